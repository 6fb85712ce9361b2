"""Models built in code with ``onnx.helper`` and random weights (no downloads), for tests
and benches: ResNet-18, MobileNet-V2 and a BERT-base encoder layer, each with a small
variant of the same structure for the fast test profile (``small=True``).

>>> import probsched as ps  # doctest: +SKIP
>>> net = ps.load_onnx(resnet18(small=True))  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np

from .onnx_import import onnx_module

OPSET = 17  # LayerNormalization is opset 17


class ModelBuilder:
    """Nodes and initializers of one graph; weights drawn from a seeded generator."""

    def __init__(self, seed: int = 0):
        self.onnx = onnx_module()
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}{self._n}"

    def const(self, value, base: str = "c") -> str:
        """An initializer holding ``value`` (float32 unless it is an integer array)."""
        a = np.asarray(value)
        a = a.astype(np.int64 if a.dtype.kind in "iu" else np.float32)
        n = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(a, n))
        return n

    def weight(self, shape, fan_in: int) -> str:
        return self.const(self.rng.normal(0, math.sqrt(2.0 / fan_in), shape), "w")

    def node(self, op: str, inputs, **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                act: str | None = "relu") -> str:
        """Conv (no bias) then BatchNormalization, then ReLU, ReLU6 (Clip) or nothing."""
        w = self.weight((cout, cin // groups, k, k), cin // groups * k * k)
        y = self.node("Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride],
                      pads=[k // 2] * 4, group=groups)
        stats = [self.rng.uniform(0.5, 1.5, cout), self.rng.uniform(-0.1, 0.1, cout),
                 self.rng.uniform(-0.1, 0.1, cout), self.rng.uniform(0.5, 1.5, cout)]
        y = self.node("BatchNormalization", [y, *(self.const(s) for s in stats)], epsilon=1e-5)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.node("Clip", [y, self.const(0.0), self.const(6.0)])
        return y

    def linear(self, x: str, cin: int, cout: int) -> str:
        """MatMul by a weight then Add of a bias (as exporters write a linear layer)."""
        y = self.node("MatMul", [x, self.weight((cin, cout), cin)])
        return self.node("Add", [y, self.const(self.rng.uniform(-0.1, 0.1, cout))])

    def model(self, name: str, inputs, output: str, out_shape):
        """The ModelProto: ``inputs`` as (name, shape) pairs, one float32 output."""
        h, T = self.onnx.helper, self.onnx.TensorProto
        graph = h.make_graph(
            self.nodes, name, [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in inputs],
            [h.make_tensor_value_info(output, T.FLOAT, out_shape)], self.inits)
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)])
        m.ir_version = 8
        self.onnx.checker.check_model(m)
        return m


def _classifier(b: ModelBuilder, x: str, channels: int, classes: int) -> str:
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    return b.node("Gemm", [x, b.weight((classes, channels), channels),
                           b.const(b.rng.uniform(-0.1, 0.1, classes))], transB=1)


def resnet18(small: bool = False, seed: int = 0):
    """ResNet-18 for 1 x 3 x 224 x 224 (small: 1 x 3 x 32 x 32, widths / 8, 10 classes)."""
    b = ModelBuilder(seed)
    size, widths, classes = (32, [8, 16, 32, 64], 10) if small else \
        (224, [64, 128, 256, 512], 1000)
    x = b.conv_bn("input", 3, widths[0], 7, stride=2)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = widths[0]
    for stage, c in enumerate(widths):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = b.conv_bn(x, cin, c, 3, stride)
            y = b.conv_bn(y, c, c, 3, act=None)
            skip = x if stride == 1 and cin == c else b.conv_bn(x, cin, c, 1, stride, act=None)
            x = b.node("Relu", [b.node("Add", [y, skip])])
            cin = c
    out = _classifier(b, x, cin, classes)
    return b.model("resnet18", [("input", [1, 3, size, size])], out, [1, classes])


def mobilenet_v2(small: bool = False, seed: int = 0):
    """MobileNet-V2 for 1 x 3 x 224 x 224 (small: 32 x 32, channels / 4, 10 classes)."""
    b = ModelBuilder(seed)
    size, scale, classes = (32, 0.25, 10) if small else (224, 1.0, 1000)

    def ch(c: int) -> int:
        return max(8, int(c * scale + 4) // 8 * 8)

    x = b.conv_bn("input", 3, ch(32), 3, stride=2, act="relu6")
    cin = ch(32)
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for k in range(n):
            stride, cout, hidden = (s if k == 0 else 1), ch(c), cin * t
            y = b.conv_bn(x, cin, hidden, 1, act="relu6") if t != 1 else x
            y = b.conv_bn(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            y = b.conv_bn(y, hidden, cout, 1, act=None)
            x = b.node("Add", [x, y]) if stride == 1 and cin == cout else y
            cin = cout
    last = ch(1280) if small else 1280
    x = b.conv_bn(x, cin, last, 1, act="relu6")
    out = _classifier(b, x, last, classes)
    return b.model("mobilenet_v2", [("input", [1, 3, size, size])], out, [1, classes])


def bert_layer(small: bool = False, seed: int = 0):
    """One BERT-base encoder layer, batch 1, sequence 128 (hidden 768, 12 heads, FFN 3072;
    small: sequence 16, hidden 64, 4 heads, FFN 128): self-attention, add and LayerNorm,
    GELU feed-forward, add and LayerNorm."""
    b = ModelBuilder(seed)
    seq, hid, heads, ffn = (16, 64, 4, 128) if small else (128, 768, 12, 3072)
    dh = hid // heads
    x = "input"

    def split_heads(t: str, perm: list[int]) -> str:
        t = b.node("Reshape", [t, b.const([1, seq, heads, dh])])
        return b.node("Transpose", [t], perm=perm)

    q = split_heads(b.linear(x, hid, hid), [0, 2, 1, 3])
    k = split_heads(b.linear(x, hid, hid), [0, 2, 3, 1])
    v = split_heads(b.linear(x, hid, hid), [0, 2, 1, 3])
    scores = b.node("Div", [b.node("MatMul", [q, k]), b.const(math.sqrt(dh))])
    probs = b.node("Softmax", [scores], axis=-1)
    ctx = b.node("Transpose", [b.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = b.node("Reshape", [ctx, b.const([1, seq, hid])])
    x = _layer_norm(b, b.node("Add", [b.linear(ctx, hid, hid), x]), hid)
    h = b.linear(x, hid, ffn)
    gelu = b.node("Erf", [b.node("Div", [h, b.const(math.sqrt(2.0))])])
    gelu = b.node("Mul", [b.node("Mul", [h, b.node("Add", [gelu, b.const(1.0)])]),
                          b.const(0.5)])
    out = _layer_norm(b, b.node("Add", [b.linear(gelu, ffn, hid), x]), hid)
    return b.model("bert_layer", [("input", [1, seq, hid])], out, [1, seq, hid])


def _layer_norm(b: ModelBuilder, x: str, hid: int) -> str:
    scale = b.const(b.rng.uniform(0.5, 1.5, hid))
    return b.node("LayerNormalization", [x, scale, b.const(b.rng.uniform(-0.1, 0.1, hid))],
                  axis=-1, epsilon=1e-12)


MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2, "bert_layer": bert_layer}
