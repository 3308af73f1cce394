"""Helpers shared by the Triton client checks (check.py over gRPC, check_http.py over REST)."""
from tritonclient.utils import InferenceServerException


def expect_error(fn, status, contains):
    """Runs fn, which must fail with `status` (a gRPC code or an HTTP status) and a message
    that contains `contains`."""
    try:
        fn()
    except InferenceServerException as e:
        assert status in str(e.status()), f"expected {status}, got {e.status()}: {e.message()}"
        assert contains in e.message(), f"'{contains}' not in '{e.message()}'"
        return
    raise AssertionError(f"expected {status}")
