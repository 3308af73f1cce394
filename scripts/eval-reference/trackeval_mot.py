"""Runs TrackEval's own MOTChallenge evaluation (PyPI `trackeval`, MotChallenge2DBox with its
preprocessing: predictions matched to distractor-class rows are dropped, then only pedestrian
rows are scored) on a folder written by `walkout eval --export-mot DIR`, and prints HOTA, DetA,
AssA and IDF1 as one JSON line.

usage: python trackeval_mot.py DIR
"""
import json
import os
import sys

import trackeval

root = sys.argv[1]
with open(os.path.join(root, "export.json")) as f:
    meta = json.load(f)

dataset = trackeval.datasets.MotChallenge2DBox({
    "GT_FOLDER": os.path.join(root, "gt"),
    "TRACKERS_FOLDER": os.path.join(root, "trackers"),
    "BENCHMARK": meta["benchmark"],
    "SPLIT_TO_EVAL": meta["split"],
    "TRACKERS_TO_EVAL": [meta["tracker"]],
    "CLASSES_TO_EVAL": ["pedestrian"],
    "DO_PREPROC": True,
    "PRINT_CONFIG": False,
})
evaluator = trackeval.Evaluator({
    "USE_PARALLEL": False,
    "PRINT_RESULTS": False,
    "PRINT_CONFIG": False,
    "TIME_PROGRESS": False,
    "OUTPUT_SUMMARY": False,
    "OUTPUT_DETAILED": False,
    "PLOT_CURVES": False,
    "OUTPUT_EMPTY_CLASSES": False,
    "DISPLAY_LESS_PROGRESS": True,
})
metrics = [trackeval.metrics.HOTA(), trackeval.metrics.Identity({"PRINT_CONFIG": False}), trackeval.metrics.CLEAR({"PRINT_CONFIG": False})]
res, msg = evaluator.evaluate([dataset], metrics)
seq = res["MotChallenge2DBox"][meta["tracker"]][meta["seq"]]["pedestrian"]
h, i, c = seq["HOTA"], seq["Identity"], seq["CLEAR"]
print(json.dumps({
    "hota": float(h["HOTA"].mean()),
    "deta": float(h["DetA"].mean()),
    "assa": float(h["AssA"].mean()),
    "idf1": float(i["IDF1"]),
    "idsw": int(c["IDSW"]),
    "mota": float(c["MOTA"]),
    "frag": int(c["Frag"]),
}))
