"""Reference HOTA and IDF1 for walkout's scorer on small hand-made cases.

Writes, per case, OUT/<case>/gt.jsonl and pred.jsonl (walkout's tracks format: frame, cam,
id, bbox) and OUT/<case>/expected.json with HOTA, DetA, AssA and IDF1 from the PyPI
package `trackeval` (HOTA and Identity metrics, as published with the HOTA paper) and IDF1
from `motmetrics`.

usage: python hota_idf1.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import motmetrics as mm
from trackeval.metrics import HOTA, Identity

OUT = sys.argv[1]


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def run_case(name, gt, pred):
    """gt, pred: lists of (frame, cam, id, [x0, y0, x1, y1])."""
    steps = sorted({(f, c) for f, c, _, _ in gt} | {(f, c) for f, c, _, _ in pred})
    gid = {i: k for k, i in enumerate(sorted({r[2] for r in gt}))}
    pid = {i: k for k, i in enumerate(sorted({r[2] for r in pred}))}
    data = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_gt_ids": len(gid), "num_tracker_ids": len(pid),
            "num_gt_dets": len(gt), "num_tracker_dets": len(pred), "num_timesteps": len(steps)}
    acc = mm.MOTAccumulator(auto_id=True)
    for s in steps:
        g = [r for r in gt if (r[0], r[1]) == s]
        p = [r for r in pred if (r[0], r[1]) == s]
        data["gt_ids"].append(np.array([gid[r[2]] for r in g], dtype=int))
        data["tracker_ids"].append(np.array([pid[r[2]] for r in p], dtype=int))
        sim = np.array([[iou(a[3], b[3]) for b in p] for a in g], dtype=float).reshape(len(g), len(p))
        data["similarity_scores"].append(sim)
        dist = 1.0 - sim
        dist[sim < 0.5] = np.nan
        acc.update([r[2] for r in g], [r[2] for r in p], dist)
    h = HOTA().eval_sequence(data)
    i = Identity({"PRINT_CONFIG": False}).eval_sequence(data)
    mh = mm.metrics.create()
    summ = mh.compute(acc, metrics=["idf1"], name="x")
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for fname, rows in (("gt.jsonl", gt), ("pred.jsonl", pred)):
        with open(os.path.join(d, fname), "w") as f:
            for fr, cam, tid, bb in rows:
                f.write(json.dumps({"frame": fr, "t": fr / 10.0, "cam": cam, "id": tid, "bbox": bb}) + "\n")
    exp = {"hota": float(np.mean(h["HOTA"])), "deta": float(np.mean(h["DetA"])), "assa": float(np.mean(h["AssA"])),
           "idf1_trackeval": float(i["IDF1"]), "idf1_motmetrics": float(summ["idf1"].iloc[0])}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    print(name, exp, file=sys.stderr)


def box(x, y, w=40.0, h=100.0):
    return [x, y, x + w, y + h]


# Case 1: three people over 12 frames in two cameras; the tracker swaps two ids halfway,
# misses a few boxes, adds a false one and is slightly off in position.
gt, pred = [], []
for f in range(12):
    for cam in (0, 1):
        for pid, x0 in ((1, 10.0), (2, 100.0), (3, 220.0)):
            x = x0 + 6.0 * f + 30.0 * cam
            gt.append((f, cam, pid, box(x, 50.0 + pid)))
            if (f, cam, pid) in ((3, 0, 2), (7, 1, 3), (8, 1, 3)):
                continue  # misses
            tid = {1: 11, 2: 12, 3: 13}[pid]
            if f >= 6 and pid in (1, 2):
                tid = 12 if pid == 1 else 11  # identity switch
            jitter = ((f * 7 + pid * 3 + cam) % 5) - 2.0
            pred.append((f, cam, tid, box(x + jitter, 50.0 + pid + jitter / 2.0)))
    if f % 4 == 1:
        pred.append((f, 0, 99, box(400.0, 300.0)))  # false positive
run_case("switch_misses_fp", gt, pred)

# Case 2: a tracker that fragments one person into two ids and drifts on another.
gt, pred = [], []
for f in range(10):
    gt.append((f, 0, 1, box(10.0 + 5 * f, 20.0)))
    gt.append((f, 0, 2, box(200.0, 20.0 + 3 * f)))
    pred.append((f, 0, 5 if f < 4 else 6, box(10.0 + 5 * f + 1, 21.0)))
    pred.append((f, 0, 7, box(200.0 + 2.5 * f, 20.0 + 3 * f)))
run_case("fragment_drift", gt, pred)
