#!/usr/bin/env python3
"""Drives a walkout server with the unmodified Triton client (PyPI tritonclient[grpc]).

Checks liveness, readiness, metadata, the repository index, inference against the TF.js
reference output, bad input (INVALID_ARGUMENT naming the input), an unknown model
(NOT_FOUND), and unload + load through the model repository extension.
"""
import argparse
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from checks import expect_error

MODEL = "movenet-multipose"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--reference", required=True)
    a = ap.parse_args()
    c = grpcclient.InferenceServerClient(url=a.url)
    assert c.is_server_live()
    assert c.is_server_ready()
    assert c.is_model_ready(MODEL)
    meta = c.get_server_metadata()
    assert meta.name == "walkout", meta
    md = c.get_model_metadata(MODEL)
    assert md.inputs[0].name == "input" and md.inputs[0].datatype == "INT32", md
    print("model metadata:", md.name, md.versions, md.platform, [(i.name, i.datatype, list(i.shape)) for i in md.inputs])
    idx = c.get_model_repository_index()
    assert [m.name for m in idx.models] == [MODEL] and idx.models[0].state == "READY", idx

    x = np.load(f"{a.reference}/bus_256x256.input.npy").astype(np.int32)
    want = np.load(f"{a.reference}/bus_256x256.output.npy")
    inp = grpcclient.InferInput("input", list(x.shape), "INT32")
    inp.set_data_from_numpy(x)
    res = c.infer(MODEL, [inp])
    name = md.outputs[0].name
    got = res.as_numpy(name)
    diff = float(np.abs(got - want).max())
    print(f"infer: output {name} {got.shape}, max abs diff vs TF.js {diff:.2e}")
    assert got.shape == (1, 6, 56) and diff < 1e-3

    bad = grpcclient.InferInput("input", [1, 256, 256, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 256, 256, 3), np.float32))
    expect_error(lambda: c.infer(MODEL, [bad]), "INVALID_ARGUMENT", "input 'input'")
    expect_error(lambda: c.infer("no-such-model", [inp]), "NOT_FOUND", "no-such-model")

    c.unload_model(MODEL)
    assert not c.is_model_ready(MODEL)
    expect_error(lambda: c.infer(MODEL, [inp]), "NOT_FOUND", MODEL)
    c.load_model(MODEL)
    assert c.is_model_ready(MODEL)
    res = c.infer(MODEL, [inp])
    assert float(np.abs(res.as_numpy(name) - want).max()) < 1e-3
    print("tritonclient: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        raise
