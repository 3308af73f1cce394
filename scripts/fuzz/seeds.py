#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) and the gRPC target's
fixture model (tests/fuzz/fixture/pose.onnx). Every seed is made here, from nothing
third-party: small ONNX graphs with the onnx helper, a TF.js model.json with its shard,
PNG and JPEG frames drawn with Pillow, .npy files from numpy, TOML configs, and protobuf
requests encoded from walkout's own .proto files. Deterministic; run with the reference venv
(scripts/reference/setup): scripts/fuzz/seeds.py
"""
import base64, io, json, os, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tests" / "fuzz"
rng = np.random.default_rng(13)


def put(target, name, data):
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="walkout-fuzz-seeds")
    m.ir_version = 8
    return m.SerializeToString()


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def const(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def onnx_seeds():
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    put("onnx", "conv-relu", model(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        [f32("x", ["N", 3, 8, 8])], [f32("y", None)], [const("w", w), const("b", np.zeros(4, np.float32))]))
    # shape arithmetic feeding a Resize, as exporters write it
    put("onnx", "shape-resize", model(
        [helper.make_node("Shape", ["x"], ["s"]),
         helper.make_node("Slice", ["s", "st", "en"], ["hw"]),
         helper.make_node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["hwf", "two"], ["hw2"]),
         helper.make_node("Cast", ["hw2"], ["hwi"], to=TensorProto.INT64),
         helper.make_node("Slice", ["s", "z", "st"], ["nc"]),
         helper.make_node("Concat", ["nc", "hwi"], ["sizes"], axis=0),
         helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")],
        [f32("x", [1, 2, "H", "W"])], [f32("y", None)],
        [const("st", np.array([2], np.int64)), const("en", np.array([4], np.int64)), const("z", np.array([0], np.int64)),
         const("two", np.array([2.0], np.float32))]))
    put("onnx", "gemm-softmax", model(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
         helper.make_node("Softmax", ["g"], ["y"], axis=1)],
        [f32("x", [2, 3, 2, 2])], [f32("y", None)],
        [const("w", rng.standard_normal((5, 12)).astype(np.float32)), const("b", np.ones(5, np.float32))]))
    put("onnx", "pool-pad-reduce", model(
        [helper.make_node("Pad", ["x", "p"], ["q"]), helper.make_node("MaxPool", ["q"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("ReduceMean", ["m"], ["y"], axes=[2, 3], keepdims=1)],
        [f32("x", [1, 3, 6, 6])], [f32("y", None)], [const("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))]))
    put("onnx", "gather-transpose-old-opset", model(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), helper.make_node("Gather", ["t", "i"], ["y"], axis=1)],
        [f32("x", [1, 4, 3])], [f32("y", None)], [const("i", np.array([0, 2], np.int64))], opset=9))


def pose_fixture():
    """int32 [N,H,W,3] -> [N,6,56]: the mean colour through a dense layer and a sigmoid."""
    w = (rng.standard_normal((3, 336)) * 0.01).astype(np.float32)
    m = model(
        [helper.make_node("Cast", ["input"], ["xf"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["xf"], ["mean"], axes=[1, 2], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["d"]),
         helper.make_node("Sigmoid", ["d"], ["s"]),
         helper.make_node("Reshape", ["s", "shape"], ["output_0"])],
        [helper.make_tensor_value_info("input", TensorProto.INT32, ["N", "H", "W", 3])],
        [f32("output_0", ["N", 6, 56])], [const("w", w), const("shape", np.array([-1, 6, 56], np.int64))])
    (FUZZ / "fixture").mkdir(exist_ok=True)
    (FUZZ / "fixture" / "pose.onnx").write_bytes(m)
    put("onnx", "pose-fixture", m)


def tfjs_seeds():
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    def attr_i(v): return {"i": str(v)}
    nodes = [
        {"name": "input", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": "1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}}},
        {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "3"}, {"size": "3"}, {"size": "3"}, {"size": "4"}]}}}}},
        {"name": "b", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "4"}]}}}}},
        {"name": "conv", "op": "_FusedConv2D", "input": ["input", "w", "b"], "attr": {
            "strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": base64.b64encode(b"SAME").decode()},
            "data_format": {"s": base64.b64encode(b"NHWC").decode()}, "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
            "fused_ops": {"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu").decode()]}},
            "num_args": attr_i(1), "T": {"type": "DT_FLOAT"}}},
        {"name": "out", "op": "Identity", "input": ["conv"], "attr": {"T": {"type": "DT_FLOAT"}}},
    ]
    manifest = [{"paths": ["group1-shard1of1.bin"], "weights": [
        {"name": "w", "shape": [3, 3, 3, 4], "dtype": "float32"},
        {"name": "b", "shape": [4], "dtype": "float32"}]}]
    mj = {"format": "graph-model", "generatedBy": "walkout-fuzz-seeds", "convertedBy": "walkout-fuzz-seeds",
          "modelTopology": {"node": nodes, "library": {}, "versions": {"producer": 1}},
          "weightsManifest": manifest,
          "signature": {"inputs": {"input:0": {"name": "input:0", "dtype": "DT_FLOAT"}}, "outputs": {"out:0": {"name": "out:0", "dtype": "DT_FLOAT"}}}}
    put("tfjs", "fused-conv", json.dumps(mj).encode() + b"\0" + w.tobytes() + b.tobytes())
    q = dict(mj)
    q["weightsManifest"] = [{"paths": ["s.bin"], "weights": [
        {"name": "w", "shape": [3, 3, 3, 4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.01, "min": -1.0}},
        {"name": "b", "shape": [4], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]
    put("tfjs", "quantized", json.dumps(q).encode() + b"\0" + bytes(range(108)) + np.zeros(4, np.float16).tobytes())


def image_seeds():
    a = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    for fmt, name in [("PNG", "rgb.png"), ("JPEG", "rgb.jpg")]:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, fmt)
        put("image", name, buf.getvalue())
    for mode, name in [("L", "grey.png"), ("RGBA", "rgba.png"), ("P", "palette.png")]:
        buf = io.BytesIO()
        Image.fromarray(a).convert(mode).save(buf, "PNG")
        put("image", name, buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", progressive=True)
    put("image", "progressive.jpg", buf.getvalue())


def npy_seeds():
    for name, arr in [("f32", rng.standard_normal((2, 3)).astype(np.float32)), ("i64", np.arange(6, dtype=np.int64).reshape(3, 2)),
                      ("u8", np.arange(5, dtype=np.uint8)), ("bool", np.array([True, False])), ("f64", np.ones((1, 2))),
                      ("f16", np.ones(3, np.float16)), ("i32-scalar", np.array(7, np.int32)),
                      ("fortran", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))]:
        buf = io.BytesIO()
        np.save(buf, arr)
        put("npy", name + ".npy", buf.getvalue())


def config_seeds():
    put("config", "model.toml", (FUZZ / "fixture" / "pose.toml").read_text())
    for m in sorted((ROOT / "models").glob("*/config.toml")):
        put("config", "model-" + m.parent.name + ".toml", m.read_text())
    put("config", "server.toml", (ROOT / "scripts" / "walkout.example.toml").read_text())


def grpc_seeds():
    with tempfile.TemporaryDirectory() as out:
        protos = ["walkout/v1/vision.proto", "kserve/grpc_predict_v2.proto"]
        subprocess.run(["protoc", "-I", str(ROOT / "proto"), "--python_out", out] + protos, check=True)
        sys.path.insert(0, out)
        from walkout.v1 import vision_pb2 as v
        from kserve import grpc_predict_v2_pb2 as k
    methods = ["AnalyzeImage", "PushFrames", "AddCamera", "RemoveCamera", "ListCameras", "ReportGateScan", "ReportShelfReadings",
               "ModelInfer", "ModelMetadata", "ModelReady", "RepositoryModelLoad", "RepositoryModelUnload", "RepositoryIndex",
               "ServerMetadata", "Check"]
    def seed(name, method, *msgs, head=0):
        put("grpc", name, bytes([methods.index(method) | head]) + b"\xffMSG".join(m.SerializeToString() for m in msgs))
    png = (FUZZ / "corpus" / "image" / "rgb.png").read_bytes()
    seed("analyze-png", "AnalyzeImage", v.AnalyzeImageRequest(model="pose", encoded=png))
    seed("analyze-raw", "AnalyzeImage", v.AnalyzeImageRequest(raw=v.RawImage(width=4, height=2, rgb=bytes(24))))
    seed("push-two", "PushFrames", v.Frame(camera_id="door-1", seq=1, encoded=png), v.Frame(camera_id="door-1", seq=2, encoded=png))
    seed("add-synthetic", "AddCamera", v.AddCameraRequest(camera=v.CameraSpec(id="syn", source="synthetic", width=64, height=64, fps=5, model="pose")))
    seed("add-push", "AddCamera", v.AddCameraRequest(camera=v.CameraSpec(id="p1", source="push", queue_size=4)))
    seed("add-video", "AddCamera", v.AddCameraRequest(camera=v.CameraSpec(id="v", source="video", url="/etc/passwd")))
    seed("remove", "RemoveCamera", v.RemoveCameraRequest(id="syn"))
    seed("list", "ListCameras", v.ListCamerasRequest())
    seed("gate", "ReportGateScan", v.GateScan(t=1.5, lane="lane-0", session="s-1"))
    seed("shelf", "ReportShelfReadings", v.ShelfReading(t=2.0, shelf="A1", grams=512.0), v.ShelfReading(t=2.5, shelf="A1", grams=400.0))
    t = k.ModelInferRequest(model_name="pose")
    i = t.inputs.add(name="input", datatype="INT32", shape=[1, 32, 32, 3])
    t.raw_input_contents.append(bytes(4 * 32 * 32 * 3))
    seed("infer-raw", "ModelInfer", t)
    t = k.ModelInferRequest(model_name="pose", model_version="1")
    i = t.inputs.add(name="input", datatype="INT32", shape=[1, 32, 32, 3])
    i.contents.int_contents.extend([1] * (32 * 32 * 3))
    seed("infer-typed", "ModelInfer", t, head=0x80)
    seed("metadata", "ModelMetadata", k.ModelMetadataRequest(name="pose"))
    seed("ready", "ModelReady", k.ModelReadyRequest(name="pose", version="1"))
    seed("load", "RepositoryModelLoad", k.RepositoryModelLoadRequest(model_name="pose:01"))
    seed("unload", "RepositoryModelUnload", k.RepositoryModelUnloadRequest(model_name="pose"))
    seed("index", "RepositoryIndex", k.RepositoryIndexRequest(ready=True))
    seed("server", "ServerMetadata", k.ServerMetadataRequest(), head=0x40)


if __name__ == "__main__":
    pose_fixture()
    onnx_seeds()
    tfjs_seeds()
    image_seeds()
    npy_seeds()
    config_seeds()
    grpc_seeds()
    print("seeds written under", FUZZ / "corpus")
