"""ONNX conformance cases for walkout, checked against onnxruntime.

Builds small models with onnx.helper, one per op and attribute variant, plus two whole
architectures with random weights (MobileNetV2-style and ResNet-style), runs each in
onnxruntime (CPU) and writes, per case, into OUT/<case>/:
  model.onnx, in<i>.npy, out<i>.npy and meta.json (tolerances).
A few extra models exercise bad input (unsupported op, opset out of range, external data).

usage: python gen.py OUT_DIR
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
rng = np.random.default_rng(20261128)
F, I64, I32, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL
NP2ONNX = {np.float32: F, np.int64: I64, np.int32: I32, np.bool_: B}
count = 0


def r(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def onnx_type(a):
    return NP2ONNX[a.dtype.type]


def write_case(name, model, feeds, atol=1e-4, rtol=1e-4, dyn=None):
    global count
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    names = [i.name for i in sess.get_inputs()]
    for k, n in enumerate(names):
        np.save(os.path.join(d, f"in{k}.npy"), feeds[n])
    for k, o in enumerate(outs):
        np.save(os.path.join(d, f"out{k}.npy"), np.asarray(o))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": len(names), "outputs": len(outs), "atol": atol, "rtol": rtol}, f)
    count += 1


def case(name, nodes, inputs, outputs, inits=None, opset=17, atol=1e-4, rtol=1e-4, dims=None):
    """inputs: list of (name, array); outputs: list of names; inits: dict name -> array."""
    inits = inits or {}
    vi = []
    for n, a in inputs:
        shape = list(a.shape) if dims is None or n not in dims else dims[n]
        vi.append(helper.make_tensor_value_info(n, onnx_type(a), shape))
    outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    g = helper.make_graph(nodes, name, vi, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="walkout-conformance")
    m.ir_version = 8 if opset <= 17 else 9
    # let onnx infer the output types
    m = onnx.shape_inference.infer_shapes(m)
    write_case(name, m, dict(inputs), atol=atol, rtol=rtol)


N = helper.make_node

# ---- convolution and linear
x = r(1, 4, 9, 11)
w = r(6, 4, 3, 3)
b = r(6)
case("conv_pads", [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])], [("x", x)], ["y"], {"w": w, "b": b})
case("conv_stride2", [N("Conv", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 0, 1, 2])], [("x", x)], ["y"], {"w": w, "b": b})
case("conv_dilation2", [N("Conv", ["x", "w"], ["y"], dilations=[2, 2], pads=[2, 2, 2, 2])], [("x", x)], ["y"], {"w": w})
case("conv_group2", [N("Conv", ["x", "w2", "b"], ["y"], group=2, pads=[1, 1, 1, 1])], [("x", x)], ["y"], {"w2": r(6, 2, 3, 3), "b": b})
case("conv_depthwise", [N("Conv", ["x", "wd", "bd"], ["y"], group=4, pads=[1, 1, 1, 1], strides=[2, 2])], [("x", x)], ["y"], {"wd": r(4, 1, 3, 3), "bd": r(4)})
case("conv_same_upper", [N("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])], [("x", x)], ["y"], {"w": w, "b": b})
case("conv_same_lower", [N("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])], [("x", x)], ["y"], {"w": w, "b": b})
case("conv_valid", [N("Conv", ["x", "w", "b"], ["y"], auto_pad="VALID")], [("x", x)], ["y"], {"w": w, "b": b})
case("conv_1x1", [N("Conv", ["x", "w1", "b"], ["y"])], [("x", x)], ["y"], {"w1": r(6, 4, 1, 1), "b": b})
case("conv_1x3", [N("Conv", ["x", "w13"], ["y"], pads=[0, 1, 0, 1])], [("x", x)], ["y"], {"w13": r(5, 4, 1, 3)})
case("conv_weight_input", [N("Conv", ["x", "wi"], ["y"], pads=[1, 1, 1, 1])], [("x", x), ("wi", w)], ["y"])
case("convtranspose_s2", [N("ConvTranspose", ["x", "wt", "bt"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])], [("x", x)], ["y"], {"wt": r(4, 3, 3, 3), "bt": r(3)})
case("convtranspose_group2", [N("ConvTranspose", ["x", "wt2"], ["y"], group=2, strides=[2, 1])], [("x", x)], ["y"], {"wt2": r(4, 2, 2, 3)})
case("matmul_2d", [N("MatMul", ["a", "b"], ["y"])], [("a", r(5, 7)), ("b", r(7, 3))], ["y"])
case("matmul_batched", [N("MatMul", ["a", "b"], ["y"])], [("a", r(2, 5, 7))], ["y"], {"b": r(7, 3)})
case("matmul_broadcast", [N("MatMul", ["a", "b"], ["y"])], [("a", r(2, 1, 5, 7)), ("b", r(3, 7, 4))], ["y"])
case("gemm_transb_c", [N("Gemm", ["a", "b", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)], [("a", r(4, 6))], ["y"], {"b": r(3, 6), "c": r(3)})
case("gemm_transa", [N("Gemm", ["a", "b"], ["y"], transA=1)], [("a", r(6, 4)), ("b", r(6, 3))], ["y"])
case("batchnorm", [N("BatchNormalization", ["x", "s", "bb", "m", "v"], ["y"], epsilon=1e-3)], [("x", x)], ["y"],
     {"s": r(4), "bb": r(4), "m": r(4), "v": r(4, lo=0.5, hi=2.0)})

# ---- activations
a = r(2, 3, 4, 5, lo=-4, hi=4)
for op, kw in [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Erf", {}), ("HardSwish", {}),
               ("LeakyRelu", {"alpha": 0.1}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4})]:
    case(f"act_{op.lower()}", [N(op, ["x"], ["y"], **kw)], [("x", a)], ["y"])
case("prelu", [N("PRelu", ["x", "s"], ["y"])], [("x", a)], ["y"], {"s": r(3, 1, 1)})
case("clip_min_max", [N("Clip", ["x", "lo", "hi"], ["y"])], [("x", a)], ["y"], {"lo": np.array(-1.5, np.float32), "hi": np.array(2.0, np.float32)})
case("clip_relu6", [N("Clip", ["x", "lo", "hi"], ["y"])], [("x", a)], ["y"], {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)})
case("clip_min_only", [N("Clip", ["x", "lo"], ["y"])], [("x", a)], ["y"], {"lo": np.array(0.5, np.float32)})
case("softmax_last", [N("Softmax", ["x"], ["y"])], [("x", a)], ["y"])
case("softmax_axis1", [N("Softmax", ["x"], ["y"], axis=1)], [("x", a)], ["y"])
case("softmax_legacy_opset11", [N("Softmax", ["x"], ["y"], axis=1)], [("x", r(2, 3, 4))], ["y"], opset=11)

# ---- elementwise with broadcasting
p = r(2, 3, 4, lo=0.5, hi=2.0)
q = r(3, 1, lo=0.5, hi=2.0)
for op in ["Add", "Sub", "Mul", "Div", "Pow"]:
    case(f"bin_{op.lower()}", [N(op, ["a", "b"], ["y"])], [("a", p), ("b", q)], ["y"])
for op in ["Sqrt", "Exp", "Log", "Abs", "Neg", "Reciprocal", "Floor", "Ceil"]:
    case(f"un_{op.lower()}", [N(op, ["x"], ["y"])], [("x", p if op in ("Sqrt", "Log") else a)], ["y"])
case("min3", [N("Min", ["a", "b", "c"], ["y"])], [("a", p), ("b", q), ("c", r(4))], ["y"])
case("max2", [N("Max", ["a", "b"], ["y"])], [("a", p), ("b", q)], ["y"])
case("sum3", [N("Sum", ["a", "b", "c"], ["y"])], [("a", p), ("b", q), ("c", r(4))], ["y"])
case("mod_int64", [N("Mod", ["a", "b"], ["y"])], [("a", np.array([[7, -7, 7, -7, 0, 9]], np.int64)), ("b", np.array([[3], [-3]], np.int64))], ["y"])
case("mod_int32", [N("Mod", ["a", "b"], ["y"])], [("a", np.array([7, -7, 7, -7, 5, -12], np.int32)), ("b", np.array([3, 3, -3, -3, 7, 5], np.int32))], ["y"])
case("add_int64", [N("Add", ["a", "b"], ["y"])], [("a", np.array([[1, -2, 3]], np.int64)), ("b", np.array([[10], [20]], np.int64))], ["y"])
case("div_int64_truncates", [N("Div", ["a", "b"], ["y"])], [("a", np.array([7, -7, 7, -7], np.int64)), ("b", np.array([2, 2, -2, -2], np.int64))], ["y"])

case("chain_add_relu_mul_sigmoid", [N("Add", ["a", "b"], ["t"]), N("Relu", ["t"], ["u"]), N("Mul", ["u", "c"], ["v"]), N("Sigmoid", ["v"], ["y"])],
     [("a", r(2, 3, 8, 8)), ("b", r(3, 1, 1))], ["y"], {"c": r(8)})

# ---- pooling
xp = r(1, 3, 10, 9)
case("maxpool_3x3_s2", [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], [("x", xp)], ["y"])
case("maxpool_ceil", [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], [("x", xp)], ["y"])
case("avgpool_exclude_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])], [("x", xp)], ["y"])
case("avgpool_include_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)], [("x", xp)], ["y"])
case("avgpool_same_upper", [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")], [("x", xp)], ["y"])
case("globalavgpool", [N("GlobalAveragePool", ["x"], ["y"])], [("x", xp)], ["y"])

# ---- resize
xr = r(1, 2, 5, 7)
def resize_case(name, mode, coord, nearest=None, scales=None, sizes=None, opset=13):
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if nearest:
        attrs["nearest_mode"] = nearest
    inits = {"roi": np.array([], np.float32)}
    ins = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        ins.append("scales")
    else:
        inits["scales"] = np.array([], np.float32)
        inits["sizes"] = np.array(sizes, np.int64)
        ins += ["scales", "sizes"]
    case(name, [N("Resize", ins, ["y"], **attrs)], [("x", xr)], ["y"], inits, opset=opset)

resize_case("resize_nearest_scales2", "nearest", "asymmetric", "floor", scales=[1, 1, 2, 2])
resize_case("resize_nearest_half_pixel", "nearest", "half_pixel", "round_prefer_floor", sizes=[1, 2, 9, 12])
resize_case("resize_nearest_ceil_align", "nearest", "align_corners", "ceil", sizes=[1, 2, 8, 11])
resize_case("resize_nearest_tf_half_pixel", "nearest", "tf_half_pixel_for_nn", "round_prefer_ceil", sizes=[1, 2, 10, 14])
resize_case("resize_linear_half_pixel", "linear", "half_pixel", sizes=[1, 2, 9, 12])
resize_case("resize_linear_pytorch_half_pixel", "linear", "pytorch_half_pixel", sizes=[1, 2, 3, 1])
resize_case("resize_linear_align_corners", "linear", "align_corners", sizes=[1, 2, 10, 13])
resize_case("resize_linear_asymmetric", "linear", "asymmetric", scales=[1, 1, 2, 2])
resize_case("resize_linear_down", "linear", "half_pixel", sizes=[1, 2, 3, 4])

# ---- shape and indexing
s = r(2, 3, 4, 5)
case("concat_axis1", [N("Concat", ["a", "b"], ["y"], axis=1)], [("a", s), ("b", r(2, 2, 4, 5))], ["y"])
case("split_equal", [N("Split", ["x"], ["y0", "y1"], axis=2)], [("x", s)], ["y0", "y1"], opset=13)
case("split_sizes", [N("Split", ["x", "sp"], ["y0", "y1", "y2"], axis=3)], [("x", s)], ["y0", "y1", "y2"], {"sp": np.array([1, 3, 1], np.int64)}, opset=13)
case("slice_steps", [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], [("x", s)], ["y"],
     {"st": np.array([0, -1, 1], np.int64), "en": np.array([2, -100, 1000], np.int64), "ax": np.array([1, 3, 2], np.int64), "sp": np.array([1, -2, 2], np.int64)})
case("slice_basic", [N("Slice", ["x", "st", "en"], ["y"])], [("x", s)], ["y"], {"st": np.array([1, 0], np.int64), "en": np.array([2, 2], np.int64)})
case("gather_axis0_neg", [N("Gather", ["x", "i"], ["y"], axis=0)], [("x", r(5, 3))], ["y"], {"i": np.array([[0, -1], [2, 1]], np.int64)})
case("gather_axis1", [N("Gather", ["x", "i"], ["y"], axis=1)], [("x", s)], ["y"], {"i": np.array([2, 0], np.int64)})
case("gathernd", [N("GatherND", ["x", "i"], ["y"])], [("x", s)], ["y"], {"i": np.array([[1, 2], [0, 0]], np.int64)})
case("reshape_zero_minus1", [N("Reshape", ["x", "sh"], ["y"])], [("x", s)], ["y"], {"sh": np.array([0, -1, 5], np.int64)})
case("flatten_axis2", [N("Flatten", ["x"], ["y"], axis=2)], [("x", s)], ["y"])
case("transpose_perm", [N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [("x", s)], ["y"])
case("transpose_default", [N("Transpose", ["x"], ["y"])], [("x", s)], ["y"])
case("squeeze_axes", [N("Squeeze", ["x", "ax"], ["y"])], [("x", r(1, 3, 1, 4))], ["y"], {"ax": np.array([0, 2], np.int64)}, opset=13)
case("unsqueeze_axes", [N("Unsqueeze", ["x", "ax"], ["y"])], [("x", r(3, 4))], ["y"], {"ax": np.array([0, -1], np.int64)}, opset=13)
case("squeeze_opset11_attr", [N("Squeeze", ["x"], ["y"], axes=[1])], [("x", r(3, 1, 4))], ["y"], opset=11)
case("expand", [N("Expand", ["x", "sh"], ["y"])], [("x", r(3, 1))], ["y"], {"sh": np.array([2, 1, 4], np.int64)})
case("tile", [N("Tile", ["x", "rep"], ["y"])], [("x", r(2, 3))], ["y"], {"rep": np.array([2, 3], np.int64)})
for mode in ["constant", "reflect", "edge"]:
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}
    ins = ["x", "pads"]
    if mode == "constant":
        inits["cv"] = np.array(0.5, np.float32)
        ins.append("cv")
    case(f"pad_{mode}", [N("Pad", ins, ["y"], mode=mode)], [("x", r(1, 2, 4, 5))], ["y"], inits)
case("shape", [N("Shape", ["x"], ["y"])], [("x", s)], ["y"])
case("shape_start_end", [N("Shape", ["x"], ["y"], start=1, end=-1)], [("x", s)], ["y"], opset=15)
case("size", [N("Size", ["x"], ["y"])], [("x", s)], ["y"])
case("cast_f32_i64", [N("Cast", ["x"], ["y"], to=I64)], [("x", a)], ["y"])
case("cast_i64_f32", [N("Cast", ["x"], ["y"], to=F)], [("x", np.array([[3, -4], [5, 0]], np.int64))], ["y"])
case("cast_f32_bool", [N("Cast", ["x"], ["y"], to=B)], [("x", np.array([0.0, 1.5, -2.0, 0.0], np.float32))], ["y"])
case("range_int64", [N("Range", ["s0", "l", "d"], ["y"])], [("s0", np.array(2, np.int64))], ["y"], {"l": np.array(17, np.int64), "d": np.array(3, np.int64)})
case("range_float", [N("Range", ["s0", "l", "d"], ["y"])], [("s0", np.array(0.5, np.float32))], ["y"], {"l": np.array(-2.0, np.float32), "d": np.array(-0.75, np.float32)})
case("constantofshape", [N("Shape", ["x"], ["sh"]), N("ConstantOfShape", ["sh"], ["c"], value=numpy_helper.from_array(np.array([2.5], np.float32))), N("Add", ["x", "c"], ["y"])], [("x", r(2, 3))], ["y"])
case("constant", [N("Constant", [], ["k"], value=numpy_helper.from_array(r(2, 3))), N("Mul", ["x", "k"], ["y"])], [("x", r(2, 3))], ["y"])

# ---- shape arithmetic: exporters compute sizes from Shape() of dynamic inputs; once the input
# shapes are fixed it all folds (Cast, arithmetic, Gather, Slice, Concat, Unsqueeze, Squeeze,
# Range, Where, ReduceProd) into the Resize, Reshape, Expand, Tile, Slice, Range and
# ConstantOfShape it feeds.
i64 = lambda *v: np.array(v, np.int64)
dyn = {"x": ["N", "C", "H", "W"]}
xs = r(1, 2, 5, 7)
case("shapearith_resize_sizes", [
    N("Shape", ["x"], ["sh"]), N("Slice", ["sh", "s2", "s4"], ["hw"]), N("Cast", ["hw"], ["hwf"], to=F),
    N("Mul", ["hwf", "k"], ["hw2"]), N("Floor", ["hw2"], ["hw2f"]), N("Cast", ["hw2f"], ["hw2i"], to=I64),
    N("Slice", ["sh", "s0", "s2"], ["nc"]), N("Concat", ["nc", "hw2i"], ["sizes"], axis=0),
    N("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel")],
    [("x", xs)], ["y"], {"s0": i64(0), "s2": i64(2), "s4": i64(4), "k": np.array([2.0, 1.5], np.float32)}, dims=dyn)
case("shapearith_resize_scales", [
    N("Shape", ["x"], ["sh"]), N("Slice", ["sh", "s2", "s4"], ["hw"]), N("Cast", ["hw"], ["hwf"], to=F),
    N("Div", ["want", "hwf"], ["sc"]), N("Concat", ["ones", "sc"], ["scales"], axis=0),
    N("Resize", ["x", "", "scales"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
    [("x", xs)], ["y"], {"s2": i64(2), "s4": i64(4), "want": np.array([10.0, 14.0], np.float32), "ones": np.ones(2, np.float32)}, dims=dyn)
case("shapearith_reshape_reduceprod", [
    N("Shape", ["x"], ["sh"]), N("Gather", ["sh", "g0"], ["n"], axis=0), N("Gather", ["sh", "g1"], ["c"], axis=0),
    N("Slice", ["sh", "s2", "s4"], ["hw"]), N("ReduceProd", ["hw"], ["p"], keepdims=1),
    N("Unsqueeze", ["n", "a0"], ["n1"]), N("Unsqueeze", ["c", "a0"], ["c1"]), N("Concat", ["c1", "n1", "p"], ["t"], axis=0),
    N("Reshape", ["x", "t"], ["y"])],
    [("x", r(2, 3, 4, 5))], ["y"], {"g0": i64(0).reshape(()), "g1": i64(1).reshape(()), "s2": i64(2), "s4": i64(4), "a0": i64(0)}, dims=dyn)
case("shapearith_expand_tile_where", [
    N("Shape", ["x"], ["sh"]), N("Equal", ["sh", "one"], ["is1"]), N("Where", ["is1", "reps_if1", "one"], ["reps"]),
    N("Tile", ["x", "reps"], ["tiled"]), N("Where", ["is1", "four", "one"], ["m"]), N("Mul", ["sh", "m"], ["big"]),
    N("Expand", ["x", "big"], ["y1"]), N("Squeeze", ["x", "a0"], ["y2"]), N("Identity", ["tiled"], ["y0"])],
    [("x", r(1, 3, 1, 2))], ["y0", "y1", "y2"], {"one": i64(1), "reps_if1": i64(2, 2, 3, 3), "four": i64(4), "a0": i64(0)}, dims=dyn)
case("shapearith_range_slice", [
    N("Shape", ["x"], ["sh"]), N("Gather", ["sh", "g3"], ["w"], axis=0), N("Range", ["z", "w", "d"], ["rg"]),
    N("Cast", ["rg"], ["rgf"], to=F), N("Add", ["x", "rgf"], ["xr"]), N("Gather", ["sh", "g2"], ["h"], axis=0),
    N("Div", ["h", "two"], ["half"]), N("Unsqueeze", ["half", "a0"], ["end"]), N("Slice", ["xr", "st", "end", "ax2"], ["y"])],
    [("x", r(1, 2, 7, 6))], ["y"], {"g3": i64(3).reshape(()), "g2": i64(2).reshape(()), "z": i64(0).reshape(()), "d": i64(1).reshape(()),
                                   "two": i64(2).reshape(()), "a0": i64(0), "st": i64(0), "ax2": i64(2)}, dims=dyn)
case("shapearith_constantofshape", [
    N("Shape", ["x"], ["sh"]), N("Slice", ["sh", "s0", "s2"], ["nc"]), N("Concat", ["nc", "ones"], ["t"], axis=0),
    N("ConstantOfShape", ["t"], ["c"], value=numpy_helper.from_array(np.array([0.5], np.float32))), N("Add", ["x", "c"], ["y"])],
    [("x", xs)], ["y"], {"s0": i64(0), "s2": i64(2), "ones": i64(1, 1)}, dims=dyn)

# ---- logic
ia = np.array([[1, 5, 3], [4, 2, 6]], np.int64)
ib = np.array([[1, 2, 3]], np.int64)
for op in ["Equal", "Less", "Greater", "GreaterOrEqual", "LessOrEqual"]:
    case(f"cmp_{op.lower()}", [N(op, ["a", "b"], ["y"])], [("a", ia), ("b", ib)], ["y"], opset=16)
ba = np.array([[True, False, True], [False, False, True]])
bb = np.array([True, True, False])
case("and", [N("And", ["a", "b"], ["y"])], [("a", ba), ("b", bb)], ["y"])
case("or", [N("Or", ["a", "b"], ["y"])], [("a", ba), ("b", bb)], ["y"])
case("not", [N("Not", ["a"], ["y"])], [("a", ba)], ["y"])
case("where", [N("Where", ["c", "a", "b"], ["y"])], [("c", ba), ("a", r(2, 3)), ("b", r(3))], ["y"])

# ---- reductions
for op, opset, as_input in [("ReduceMean", 13, False), ("ReduceMax", 13, False), ("ReduceMin", 18, True), ("ReduceL2", 13, False), ("ReduceSum", 13, True)]:
    for keep in (0, 1):
        if as_input:
            case(f"{op.lower()}_keep{keep}", [N(op, ["x", "ax"], ["y"], keepdims=keep)], [("x", s)], ["y"], {"ax": np.array([1, -1], np.int64)}, opset=opset)
        else:
            case(f"{op.lower()}_keep{keep}", [N(op, ["x"], ["y"], axes=[1, -1], keepdims=keep)], [("x", s)], ["y"], opset=opset)
case("reducesum_all", [N("ReduceSum", ["x"], ["y"], keepdims=0)], [("x", s)], ["y"], opset=13)
case("argmax_keep", [N("ArgMax", ["x"], ["y"], axis=2)], [("x", s)], ["y"])
case("argmax_last_index", [N("ArgMax", ["x"], ["y"], axis=1, keepdims=0, select_last_index=1)], [("x", np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32))], ["y"])

# ---- detection and normalisation
case("topk_axis1_smallest", [N("TopK", ["x", "k"], ["v", "i"], axis=1, largest=0)], [("x", s)], ["v", "i"], {"k": np.array([2], np.int64)})
case("topk_last", [N("TopK", ["x", "k"], ["v", "i"])], [("x", s)], ["v", "i"], {"k": np.array([3], np.int64)})
boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11], [0, 10.1, 1, 11.1], [0, 100, 1, 101]]], np.float32)
scores = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3], [0.1, 0.8, 0.7, 0.2, 0.6, 0.9]]], np.float32)
case("nms", [N("NonMaxSuppression", ["b", "sc", "mo", "iou", "st"], ["y"])], [("b", boxes), ("sc", scores)], ["y"],
     {"mo": np.array([3], np.int64), "iou": np.array([0.5], np.float32), "st": np.array([0.0], np.float32)})
cboxes = np.array([[[0.5, 0.5, 1, 1], [0.5, 0.6, 1, 1], [0.5, 10.5, 1, 1]]], np.float32)
case("nms_center", [N("NonMaxSuppression", ["b", "sc", "mo", "iou"], ["y"], center_point_box=1)], [("b", cboxes), ("sc", np.array([[[0.9, 0.8, 0.7]]], np.float32))], ["y"],
     {"mo": np.array([10], np.int64), "iou": np.array([0.5], np.float32)})
case("lpnorm_p2", [N("LpNormalization", ["x"], ["y"], axis=1, p=2)], [("x", s)], ["y"])
case("lpnorm_p1", [N("LpNormalization", ["x"], ["y"], axis=-1, p=1)], [("x", s)], ["y"])
case("identity_dropout", [N("Identity", ["x"], ["t"]), N("Dropout", ["t"], ["y"])], [("x", s)], ["y"])

# ---- IR features
case("symbolic_batch", [N("Relu", ["x"], ["y"])], [("x", r(3, 4))], ["y"], dims={"x": ["batch", 4]})
gi = helper.make_graph([N("Add", ["x", "w"], ["y"])], "input_is_initializer",
                       [helper.make_tensor_value_info("x", F, [2, 3]), helper.make_tensor_value_info("w", F, [2, 3])],
                       [helper.make_tensor_value_info("y", F, [2, 3])], [numpy_helper.from_array(r(2, 3), "w")])
m = helper.make_model(gi, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
write_case("input_is_initializer", m, {"x": r(2, 3)})


# ---- whole architectures with random weights
class Net:
    def __init__(self, name):
        self.name, self.nodes, self.inits, self.k = name, [], {}, 0

    def t(self, prefix):
        self.k += 1
        return f"{prefix}{self.k}"

    def conv_bn(self, x, cin, cout, k, s=1, group=1, act="relu"):
        w, bn = self.t("w"), self.t("bn")
        self.inits[w] = (rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))).astype(np.float32)
        y = self.t("c")
        self.nodes.append(N("Conv", [x, w], [y], pads=[k // 2] * 4, strides=[s, s], group=group))
        for suffix, val in [("s", r(cout, lo=0.5, hi=1.5)), ("b", r(cout, lo=-0.1, hi=0.1)), ("m", r(cout, lo=-0.1, hi=0.1)), ("v", r(cout, lo=0.5, hi=1.5))]:
            self.inits[bn + suffix] = val
        z = self.t("bn")
        self.nodes.append(N("BatchNormalization", [y, bn + "s", bn + "b", bn + "m", bn + "v"], [z]))
        if act == "relu":
            o = self.t("r")
            self.nodes.append(N("Relu", [z], [o]))
            return o
        if act == "relu6":
            o = self.t("r6")
            lo, hi = self.t("lo"), self.t("hi")
            self.inits[lo], self.inits[hi] = np.array(0, np.float32), np.array(6, np.float32)
            self.nodes.append(N("Clip", [z, lo, hi], [o]))
            return o
        return z

    def add(self, a, b_, relu=False):
        o = self.t("add")
        self.nodes.append(N("Add", [a, b_], [o]))
        if relu:
            r_ = self.t("r")
            self.nodes.append(N("Relu", [o], [r_]))
            return r_
        return o

    def head(self, x, c, classes=10):
        g, f, wn, bn, y = self.t("gap"), self.t("flat"), self.t("fcw"), self.t("fcb"), "logits"
        self.nodes += [N("GlobalAveragePool", [x], [g]), N("Flatten", [g], [f])]
        self.inits[wn], self.inits[bn] = r(classes, c, lo=-0.2, hi=0.2), r(classes, lo=-0.1, hi=0.1)
        self.nodes.append(N("Gemm", [f, wn, bn], [y], transB=1))
        return y

    def save(self, x_shape, feeds_shape, atol):
        vi = [helper.make_tensor_value_info("input", F, x_shape)]
        g = helper.make_graph(self.nodes, self.name, vi, [helper.make_tensor_value_info("logits", F, None)],
                              [numpy_helper.from_array(v, k) for k, v in self.inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m)
        write_case(self.name, m, {"input": r(*feeds_shape)}, atol=atol, rtol=1e-3)


mb = Net("net_mobilenetv2")
h = mb.conv_bn("input", 3, 16, 3, s=2, act="relu6")
cin = 16
for t_, c, n_, s_ in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2)]:
    for i in range(n_):
        stride = s_ if i == 0 else 1
        e = mb.conv_bn(h, cin, cin * t_, 1, act="relu6") if t_ != 1 else h
        d = mb.conv_bn(e, cin * t_, cin * t_, 3, s=stride, group=cin * t_, act="relu6")
        pj = mb.conv_bn(d, cin * t_, c, 1, act=None)
        h = mb.add(h, pj) if stride == 1 and cin == c else pj
        cin = c
h = mb.conv_bn(h, cin, 128, 1, act="relu6")
mb.head(h, 128)
mb.save(["N", 3, 64, 64], (2, 3, 64, 64), atol=1e-3)

rn = Net("net_resnet")
h = rn.conv_bn("input", 3, 16, 3, s=1)
mp = rn.t("mp")
rn.nodes.append(N("MaxPool", [h], [mp], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
h, cin = mp, 16
for c, s_ in [(16, 1), (32, 2), (64, 2)]:
    for i in range(2):
        stride = s_ if i == 0 else 1
        y = rn.conv_bn(h, cin, c, 3, s=stride)
        y = rn.conv_bn(y, c, c, 3, act=None)
        sc = rn.conv_bn(h, cin, c, 1, s=stride, act=None) if (stride != 1 or cin != c) else h
        h = rn.add(y, sc, relu=True)
        cin = c
rn.head(h, cin)
rn.save([1, 3, 64, 64], (1, 3, 64, 64), atol=1e-3)

# ---- 1-D and 3-D convolution and pooling, dilated pooling, more activations and norms
x1 = r(2, 4, 17)
case("conv1d", [N("Conv", ["x", "w", "b"], ["y"], pads=[2, 1], strides=[2], dilations=[2])], [("x", x1)], ["y"], {"w": r(6, 4, 3), "b": r(6)})
case("conv1d_group2", [N("Conv", ["x", "w"], ["y"], group=2, auto_pad="SAME_UPPER")], [("x", x1)], ["y"], {"w": r(6, 2, 4)})
x3 = r(2, 4, 7, 6, 5)
case("conv3d", [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 0, 2, 1, 1, 0], strides=[2, 1, 2], dilations=[1, 2, 1])], [("x", x3)], ["y"], {"w": r(6, 4, 3, 2, 3), "b": r(6)})
case("conv3d_group2_dilated", [N("Conv", ["x", "w"], ["y"], group=2, dilations=[2, 1, 1], strides=[1, 2, 1])], [("x", x3)], ["y"], {"w": r(4, 2, 2, 3, 2)})
case("maxpool1d_ceil", [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)], [("x", x1)], ["y"])
case("avgpool1d_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[4], strides=[3], pads=[2, 1])], [("x", x1)], ["y"])
case("maxpool3d", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 3, 2], strides=[2, 2, 1], pads=[1, 1, 0, 0, 1, 1])], [("x", x3)], ["y"])
case("avgpool3d_exclude_pad_ceil", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 2, 2], strides=[2, 2, 2], pads=[1, 0, 1, 1, 1, 0], ceil_mode=1)], [("x", x3)], ["y"])
case("avgpool3d_include_pad", [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2, 3], pads=[1, 1, 1, 0, 0, 1], count_include_pad=1)], [("x", x3)], ["y"])
case("maxpool2d_dilated", [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], dilations=[2, 3], pads=[1, 1, 1, 0], strides=[1, 2])], [("x", r(1, 3, 12, 13))], ["y"])
case("maxpool_indices_unused", [N("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], strides=[2, 2])], [("x", r(1, 3, 8, 8))], ["y"])
for op, attrs in [("Elu", {"alpha": 0.7}), ("Selu", {}), ("Softplus", {}), ("Softsign", {}), ("Sign", {}), ("Shrink", {"lambd": 0.3, "bias": 0.1})]:
    case(f"act_{op.lower()}", [N(op, ["x"], ["y"], **attrs)], [("x", r(2, 3, 5, 4, lo=-3, hi=3))], ["y"])
case("act_elu_after_conv", [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), N("Elu", ["c"], ["y"], alpha=1.3)], [("x", r(1, 4, 6, 6))], ["y"], {"w": r(5, 4, 3, 3)})
case("logsoftmax_axis1", [N("LogSoftmax", ["x"], ["y"], axis=1)], [("x", r(2, 5, 3, lo=-8, hi=8))], ["y"])
case("logsoftmax_legacy_opset11", [N("LogSoftmax", ["x"], ["y"], axis=1)], [("x", r(2, 5, 3))], ["y"], opset=11)
case("lrn", [N("LRN", ["x"], ["y"], size=3, alpha=0.02, beta=0.6, bias=1.5)], [("x", r(2, 6, 5, 4))], ["y"])
case("instancenorm", [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], [("x", r(2, 3, 5, 4))], ["y"], {"s": r(3), "b": r(3)})
case("batchnorm_node_params", [N("Add", ["s0", "s1"], ["s"]), N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], [("x", r(2, 3, 4, 4))], ["y"],
     {"s0": r(3), "s1": r(3), "b": r(3), "m": r(3), "v": r(3, lo=0.5, hi=2.0)})
case("dropout_mask_used", [N("Dropout", ["x"], ["y", "mask"]), N("Cast", ["mask"], ["m"], to=F), N("Add", ["y", "m"], ["z"])], [("x", r(2, 5))], ["z"], opset=13)

# ---- older opsets: attributes that later became inputs, and changed defaults
case("upsample_opset7_attr", [N("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 3.0], mode="nearest")], [("x", r(1, 2, 3, 4))], ["y"], opset=7)
case("upsample_opset7_linear", [N("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0], mode="linear")], [("x", r(1, 2, 3, 4))], ["y"], opset=7)
case("upsample_opset9_input", [N("Upsample", ["x", "sc"], ["y"], mode="nearest")], [("x", r(1, 2, 3, 4))], ["y"], {"sc": np.array([1, 1, 2, 2], np.float32)}, opset=9)
case("resize_opset10", [N("Resize", ["x", "sc"], ["y"], mode="nearest")], [("x", r(1, 2, 3, 4))], ["y"], {"sc": np.array([1, 1, 2, 1.5], np.float32)}, opset=10)
case("slice_opset9_attrs", [N("Slice", ["x"], ["y"], starts=[1, -3], ends=[3, 100], axes=[1, 2])], [("x", r(2, 4, 5))], ["y"], opset=9)
case("pad_opset2_attrs", [N("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 2, 1], mode="constant", value=1.5)], [("x", r(2, 3, 4))], ["y"], opset=2)
case("pad_opset2_reflect", [N("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], mode="reflect")], [("x", r(1, 2, 4, 5))], ["y"], opset=2)
case("topk_opset1_attr", [N("TopK", ["x"], ["v", "i"], k=3, axis=1)], [("x", r(2, 6))], ["v", "i"], opset=1)
case("batchnorm_opset7", [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=1, epsilon=1e-3)], [("x", r(2, 3, 4, 4))], ["y"],
     {"s": r(3), "b": r(3), "m": r(3), "v": r(3, lo=0.5, hi=2.0)}, opset=7)
case("gemm_opset7", [N("Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)], [("a", r(3, 4))], ["y"], {"b": r(5, 4), "c": r(5)}, opset=7)
case("softmax_opset1", [N("Softmax", ["x"], ["y"])], [("x", r(2, 3, 4))], ["y"], opset=1)

# ---- top-k and argmax over long rows with many ties: the GPU and OpenCL kernels reduce each
# row across a work-group, so ties between work-items must still go to the lower index (or,
# with select_last_index, the higher)
ties = lambda *shape: (np.round(r(*shape) * 4) / 4).astype(np.float32)
case("topk_long_ties", [N("TopK", ["x", "k"], ["v", "i"])], [("x", ties(3, 300))], ["v", "i"], {"k": np.array([7], np.int64)})
case("topk_long_ties_smallest", [N("TopK", ["x", "k"], ["v", "i"], largest=0)], [("x", ties(2, 1000))], ["v", "i"], {"k": np.array([5], np.int64)})
case("argmax_long_ties", [N("ArgMax", ["x"], ["y"], axis=1)], [("x", ties(2, 300, 3))], ["y"])
case("argmax_long_ties_last", [N("ArgMax", ["x"], ["y"], axis=1, select_last_index=1)], [("x", ties(2, 300, 3))], ["y"])

# ---- external data (a valid model whose weights live in weights.bin)
d = os.path.join(OUT, "external_data")
gx = helper.make_graph([N("MatMul", ["x", "w"], ["y"])], "external_data", [helper.make_tensor_value_info("x", F, [2, 8])],
                       [helper.make_tensor_value_info("y", F, [2, 4])], [numpy_helper.from_array(r(8, 4), "w")])
mx = helper.make_model(gx, opset_imports=[helper.make_opsetid("", 13)])
mx.ir_version = 8
os.makedirs(d, exist_ok=True)
onnx.save_model(mx, os.path.join(d, "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
ml = onnx.load(os.path.join(d, "model.onnx"))
write_case("external_data", ml, {"x": r(2, 8)})
onnx.save_model(mx, os.path.join(d, "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)

# ---- bad input models (no reference outputs)
bad = os.path.join(OUT, "_bad")
os.makedirs(bad, exist_ok=True)
gb = helper.make_graph([N("Relu", ["x"], ["a"]), N("FancyOp", ["a"], ["b"]), N("Sigmoid", ["b"], ["c"]), N("MysteryOp", ["c"], ["y"], name="mystery_node")],
                       "unsupported", [helper.make_tensor_value_info("x", F, [2])], [helper.make_tensor_value_info("y", F, [2])])
mb_ = helper.make_model(gb, opset_imports=[helper.make_opsetid("", 13)])
onnx.save(mb_, os.path.join(bad, "unsupported.onnx"))
go = helper.make_graph([N("Relu", ["x"], ["y"])], "future", [helper.make_tensor_value_info("x", F, [2])], [helper.make_tensor_value_info("y", F, [2])])
onnx.save(helper.make_model(go, opset_imports=[helper.make_opsetid("", 30)]), os.path.join(bad, "opset30.onnx"))

# Unsqueeze axes computed from the data: they must be known when the model loads
gd = helper.make_graph([N("Cast", ["t"], ["ti"], to=I64, name="axes_from_t"), N("Unsqueeze", ["x", "ti"], ["y"], name="unsq")], "axes_from_data",
                       [helper.make_tensor_value_info("x", F, [2]), helper.make_tensor_value_info("t", F, [1])], [helper.make_tensor_value_info("y", F, None)])
onnx.save(helper.make_model(gd, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(bad, "axes_from_data.onnx"))

print(f"onnx-conformance: {count} cases in {OUT}", file=sys.stderr)
