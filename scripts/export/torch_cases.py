"""ONNX models as PyTorch users export them: torch.onnx.export (the TorchScript exporter of
torch 2.5) of torchvision models with random weights, with dynamic batch and spatial axes.
Writes OUT/<case>/model.onnx and input sets in<s>_<i>.npy at several sizes; the reference
outputs come from onnxruntime afterwards (scripts/export/reference.py).

usage: python torch_cases.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

OUT = sys.argv[1]
torch.manual_seed(20261129)
rng = np.random.default_rng(20261129)


class TinyDetector(nn.Module):
    """A detection-style net: a small backbone, a feature pyramid joined by interpolation to
    the size of the finer map, and a dense head whose boxes are decoded against a grid made
    from the feature map's own shape (arange, meshgrid, reshape with inferred sizes)."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.c3 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.c4 = nn.Sequential(nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.Hardswish())
        self.lat3 = nn.Conv2d(32, 32, 1)
        self.lat4 = nn.Conv2d(64, 32, 1)
        self.cls = nn.Conv2d(32, classes, 3, 1, 1)
        self.box = nn.Conv2d(32, 4, 3, 1, 1)
        self.classes = classes

    def forward(self, x):
        f3 = self.c3(self.stem(x))
        f4 = self.c4(f3)
        p4 = self.lat4(f4)
        p3 = self.lat3(f3) + F.interpolate(p4, size=f3.shape[-2:], mode="nearest")
        p3b = F.interpolate(p3, scale_factor=2.0, mode="bilinear", align_corners=False)
        feats = p3 + F.adaptive_avg_pool2d(p3b, 1)
        n, _, h, w = feats.shape
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        grid = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2)
        reg = self.box(feats).permute(0, 2, 3, 1).reshape(n, -1, 4)
        stride = x.shape[-1] / w
        centre = (grid + 0.5 + reg[..., :2].tanh()) * stride
        size = reg[..., 2:].exp() * stride
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
        scores = self.cls(feats).sigmoid().permute(0, 2, 3, 1).reshape(n, -1, self.classes)
        best, label = scores.max(dim=-1)
        return boxes, best, label


def randomise_batchnorm(m):
    # random running statistics, so that the folded batch norms are not identities
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m


def export(name, model, sizes, atol, rtol, outputs=("out",)):
    model = randomise_batchnorm(model).eval()
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    first = torch.from_numpy(rng.uniform(-1, 1, size=sizes[0]).astype(np.float32))
    axes = {"x": {0: "batch", 2: "height", 3: "width"}}
    axes.update({o: {0: "batch"} for o in outputs})
    torch.onnx.export(model, (first,), os.path.join(d, "model.onnx"), input_names=["x"], output_names=list(outputs),
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    for s, shape in enumerate(sizes):
        np.save(os.path.join(d, f"in{s}_0.npy"), rng.uniform(-1, 1, size=shape).astype(np.float32))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": 1, "sets": len(sizes), "atol": atol, "rtol": rtol,
                   "exporter": f"torch.onnx.export, torch {torch.__version__}, torchvision {torchvision.__version__}"}, f)
    print(f"{name}: {[list(s) for s in sizes]}")


export("torch_mobilenet_v3_small", torchvision.models.mobilenet_v3_small(weights=None),
       [(1, 3, 96, 96), (2, 3, 128, 112)], 1e-6, 1e-4)
export("torch_resnet18", torchvision.models.resnet18(weights=None), [(1, 3, 64, 64), (2, 3, 96, 80)], 1e-4, 1e-3)
export("torch_tiny_detector", TinyDetector(), [(1, 3, 64, 64), (2, 3, 96, 128)], 1e-3, 1e-3,
       outputs=("boxes", "scores", "labels"))
