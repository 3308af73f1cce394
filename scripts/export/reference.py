"""Runs every exported case under DIR in onnxruntime (CPU) and writes its outputs
out<s>_<i>.npy beside the inputs in<s>_<i>.npy, and the output count into meta.json.

usage: python reference.py DIR
"""
import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort

for meta_path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "meta.json"))):
    d = os.path.dirname(meta_path)
    meta = json.load(open(meta_path))
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for s in range(meta["sets"]):
        feeds = {n: np.load(os.path.join(d, f"in{s}_{i}.npy")) for i, n in enumerate(names)}
        outs = sess.run(None, feeds)
        for i, o in enumerate(outs):
            np.save(os.path.join(d, f"out{s}_{i}.npy"), np.asarray(o))
    meta["outputs"] = len(sess.get_outputs())
    meta["onnxruntime"] = ort.__version__
    json.dump(meta, open(meta_path, "w"))
    print(f"{os.path.basename(d)}: {meta['sets']} input sets, {meta['outputs']} outputs")
