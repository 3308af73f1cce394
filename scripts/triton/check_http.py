#!/usr/bin/env python3
"""Drives a walkout server over KServe v2 REST with the unmodified Triton HTTP client
(PyPI tritonclient[http]), and reads the statistics extension over both protocols.

Checks liveness, readiness, server and model metadata and config, the repository index,
inference with binary and with JSON tensors against the TF.js reference output, bad input
(400 naming the input), an unknown model (404), unload + load, and that the statistics of
both protocols agree with each other and with the requests made.
"""
import argparse
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from checks import expect_error

MODEL = "movenet-multipose"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--grpc", required=True)
    ap.add_argument("--reference", required=True)
    a = ap.parse_args()
    c = httpclient.InferenceServerClient(url=a.http)
    g = grpcclient.InferenceServerClient(url=a.grpc)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    meta = c.get_server_metadata()
    assert meta["name"] == "walkout" and "statistics" in meta["extensions"], meta
    md = c.get_model_metadata(MODEL)
    assert md["inputs"][0]["name"] == "input" and md["inputs"][0]["datatype"] == "INT32", md
    cfg = c.get_model_config(MODEL)
    assert cfg["input"][0]["data_type"] == "TYPE_INT32", cfg
    idx = c.get_model_repository_index()
    assert [m["name"] for m in idx] == [MODEL] and idx[0]["state"] == "READY", idx
    before = c.get_inference_statistics(MODEL)["model_stats"][0]

    x = np.load(f"{a.reference}/bus_256x256.input.npy").astype(np.int32)
    want = np.load(f"{a.reference}/bus_256x256.output.npy")
    name = md["outputs"][0]["name"]
    for binary in (True, False):
        inp = httpclient.InferInput("input", list(x.shape), "INT32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput(name, binary_data=binary)
        got = c.infer(MODEL, [inp], outputs=[out], request_id="r1").as_numpy(name)
        diff = float(np.abs(got - want).max())
        print(f"http infer ({'binary' if binary else 'JSON'} tensors): output {name} {got.shape}, max abs diff vs TF.js {diff:.2e}")
        assert got.shape == (1, 6, 56) and diff < 1e-3

    bad = httpclient.InferInput("input", [1, 256, 256, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 256, 256, 3), np.float32))
    expect_error(lambda: c.infer(MODEL, [bad]), "400", "input 'input'")
    expect_error(lambda: c.infer("no-such-model", [inp]), "404", "no-such-model")

    # statistics: the two protocols report the same numbers, and count what was asked
    hs = c.get_inference_statistics(MODEL)["model_stats"][0]
    gs = g.get_inference_statistics(MODEL, as_json=True)["model_stats"][0]
    assert int(hs["inference_count"]) == int(gs["inference_count"]), (hs, gs)
    assert int(hs["inference_count"]) - int(before["inference_count"]) == 2, (before, hs)
    ist = hs["inference_stats"]
    assert int(ist["success"]["count"]) - int(before["inference_stats"]["success"]["count"]) == 2, hs
    assert int(ist["compute_infer"]["ns"]) > 0 and int(ist["queue"]["count"]) >= 2, hs
    assert any(int(b["batch_size"]) == 1 for b in hs["batch_stats"]), hs
    print("statistics:", {k: hs[k] for k in ("inference_count", "execution_count")},
          {k: v for k, v in ist.items() if k in ("success", "queue", "compute_infer")})

    c.unload_model(MODEL)
    assert not c.is_model_ready(MODEL)
    expect_error(lambda: c.infer(MODEL, [inp]), "404", MODEL)
    c.load_model(MODEL)
    assert c.is_model_ready(MODEL)
    print("tritonclient.http: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        raise
