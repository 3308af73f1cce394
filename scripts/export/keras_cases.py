"""ONNX models as TensorFlow users export them: tf2onnx from a Keras model with a dynamic
spatial size and UpSampling2D (nearest and bilinear), random weights. Writes
OUT/<case>/model.onnx and input sets in<s>_<i>.npy at several sizes; the reference outputs
come from onnxruntime afterwards (scripts/export/reference.py).

usage: python keras_cases.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tf2onnx

OUT = sys.argv[1]
tf.keras.utils.set_random_seed(20261129)
rng = np.random.default_rng(20261129)
L = tf.keras.layers


def unet_like():
    x = L.Input(shape=(None, None, 3), name="image")
    a = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    b = L.Conv2D(24, 3, strides=2, padding="same", activation="relu")(a)
    b = L.BatchNormalization()(b, training=False)
    c = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(b)
    c = L.Conv2D(32, 1)(c)
    up_c = L.UpSampling2D(2, interpolation="bilinear")(c)
    m = L.Concatenate()([b, up_c])
    m = L.Conv2D(16, 3, padding="same", activation="swish")(m)
    up_m = L.UpSampling2D(2, interpolation="nearest")(m)
    y = L.Add()([a, up_m])
    y = L.Conv2D(4, 1, activation="sigmoid", name="mask")(y)
    return tf.keras.Model(x, y)


def export(name, model, sizes, atol, rtol):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    # random batch-norm statistics, so that the folded batch norms are not identities
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.uniform(-0.2, 0.2, b.shape),
                               rng.uniform(-0.2, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    spec = (tf.TensorSpec((None, None, None, 3), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=os.path.join(d, "model.onnx"))
    for s, shape in enumerate(sizes):
        np.save(os.path.join(d, f"in{s}_0.npy"), rng.uniform(0, 1, size=shape).astype(np.float32))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": 1, "sets": len(sizes), "atol": atol, "rtol": rtol,
                   "exporter": f"tf2onnx {tf2onnx.__version__}, tensorflow {tf.__version__}"}, f)
    print(f"{name}: {[list(s) for s in sizes]}")


export("tf2onnx_keras_upsampling", unet_like(), [(1, 64, 48, 3), (2, 96, 80, 3)], 1e-4, 1e-3)
