"""Exports a TF.js graph model to ONNX with tf2onnx, the way a user would.

usage: tfjs-to-onnx.py MODEL_JSON OUT_ONNX

The TF.js converter strips attributes that TensorFlow needs to rebuild the graph
(`TArgs` of the fused conv/matmul ops, and type attributes that have defaults, such as
TopKV2's `index_type`). tf2onnx re-creates every node in TensorFlow to infer shapes, so
this script puts them back into a copy of model.json first, then runs
`python -m tf2onnx.convert --tfjs`.
"""
import json
import os
import subprocess
import sys
import tempfile

from tensorflow.python.framework import dtypes, op_def_registry

FUSED = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def restore_attrs(model):
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in FUSED and "TArgs" not in attr:
            n = int(attr.get("num_args", {}).get("i", "1"))
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n}}
        op_def = op_def_registry.get(node["op"])
        if op_def is None:
            continue
        for a in op_def.attr:
            if a.name not in attr and a.type == "type" and a.HasField("default_value"):
                attr[a.name] = {"type": "DT_" + dtypes.as_dtype(a.default_value.type).name.upper()}


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        model = json.load(f)
    restore_attrs(model)
    with tempfile.TemporaryDirectory() as tmp:
        # the weight shards stay where they are: link them next to the fixed model.json
        base = os.path.dirname(os.path.abspath(src))
        for m in model.get("weightsManifest", []):
            for p in m["paths"]:
                os.symlink(os.path.join(base, p), os.path.join(tmp, p))
        fixed = os.path.join(tmp, "model.json")
        with open(fixed, "w") as f:
            json.dump(model, f)
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", fixed, "--output", out, "--opset", "17"], check=True)


if __name__ == "__main__":
    main()
