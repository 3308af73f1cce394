"""Runs the ONNX project's model tests (data/onnx-backend/<folder>/<case>/) on onnxruntime
(PyPI), as shipped, with the ONNX backend's tolerances, and prints one line per case:
`<folder>/<case> ok` or `<folder>/<case> FAIL <why>`. The walkout test compares its own
results with these (tests/onnx_backend.rs)."""
import glob, json, os, sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

root = sys.argv[1]
ort.set_default_logger_severity(3)


def load(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run(case):
    rtol, atol = 1e-3, 1e-7
    dj = os.path.join(case, "data.json")
    if os.path.exists(dj):
        d = json.load(open(dj))
        rtol, atol = d.get("rtol", rtol), d.get("atol", atol)
    sess = ort.InferenceSession(os.path.join(case, "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for ds in sorted(glob.glob(os.path.join(case, "test_data_set_*"))):
        n_in = len(glob.glob(os.path.join(ds, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(ds, "output_*.pb")))
        ins = [load(os.path.join(ds, f"input_{i}.pb")) for i in range(n_in)]
        want = [load(os.path.join(ds, f"output_{i}.pb")) for i in range(n_out)]
        got = sess.run(None, dict(zip(names, ins)))
        if len(got) != len(want):
            raise AssertionError(f"{len(got)} outputs, expected {len(want)}")
        for g, w in zip(got, want):
            if w.dtype.kind in "OUS":
                np.testing.assert_array_equal(np.asarray(g).astype(object), w.astype(object))
            else:
                np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


for folder in ("pytorch-converted", "pytorch-operator", "simple"):
    for case in sorted(glob.glob(os.path.join(root, folder, "*"))):
        name = f"{folder}/{os.path.basename(case)}"
        try:
            run(case)
            print(f"{name} ok", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            print(f"{name} FAIL {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}", flush=True)
