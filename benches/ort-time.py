"""Times one ONNX model on onnxruntime's CPU provider (benches/cpu-vs-onnxruntime).

usage: ort-time.py MODEL INPUT_NPY THREADS ITERS [REFERENCE_OUTPUT_NPY]
Prints one JSON line: threads, median ms per run, and the largest absolute difference
from the reference output when one is given.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

model, inp, threads, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
x = np.load(inp)
for _ in range(3):
    out = sess.run(None, {name: x})
times = []
for _ in range(iters):
    t0 = time.perf_counter()
    sess.run(None, {name: x})
    times.append(time.perf_counter() - t0)
res = {"threads": threads, "ms_median": float(np.median(times) * 1e3), "onnxruntime": ort.__version__}
if len(sys.argv) > 5:
    ref = np.load(sys.argv[5])
    res["max_abs_diff_vs_reference"] = float(np.abs(out[0].reshape(ref.shape) - ref).max())
print(json.dumps(res))
