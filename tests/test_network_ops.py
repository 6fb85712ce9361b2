"""Each ONNX op the importer translates, compiled and checked against onnxruntime on random
inputs, in both layouts (shapes and attributes drawn by hypothesis where they vary most:
convolutions, pooling, matmul broadcasting; in the default layout, channels-last)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_check import check_against_ort, one_node

R = np.random.default_rng(1)


def w(*shape):
    return R.standard_normal(shape).astype(np.float32)


CASES = {
    "add_broadcast": one_node("Add", {"a": [2, 3, 4], "b": [3, 1]}),
    "sub_const": one_node("Sub", {"a": [2, 5]}, {"b": w(5)}),
    "mul_scalar": one_node("Mul", {"a": [3, 4]}, {"s": np.float32(1.5)}),
    "div": one_node("Div", {"a": [4, 3], "b": [1, 3]}),
    "relu": one_node("Relu", {"x": [2, 7]}),
    "clip": one_node("Clip", {"x": [3, 6]}, {"lo": np.float32(-0.5), "hi": np.float32(0.7)}),
    "clip_min_only": one_node("Clip", {"x": [9]}, {"lo": np.float32(0.0)}),
    "sigmoid": one_node("Sigmoid", {"x": [5, 5]}),
    "tanh": one_node("Tanh", {"x": [5, 5]}),
    "erf": one_node("Erf", {"x": [5, 5]}),
    "exp": one_node("Exp", {"x": [5, 5]}),
    "pow2": one_node("Pow", {"x": [4, 4]}, {"p": np.float32(2.0)}),
    "pow3": one_node("Pow", {"x": [4, 4]}, {"p": np.float32(3.0)}),
    "batchnorm": one_node("BatchNormalization", {"x": [1, 3, 4, 4]},
                          {"g": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.5}),
    "conv_group_dilation": one_node("Conv", {"x": [1, 4, 9, 8]}, {"w": w(6, 2, 3, 3),
                                    "b": w(6)}, group=2, dilations=[2, 1], strides=[1, 2],
                                    pads=[1, 0, 2, 1]),
    "conv_same_upper": one_node("Conv", {"x": [1, 3, 7, 7]}, {"w": w(4, 3, 3, 3)},
                                auto_pad="SAME_UPPER", strides=[2, 2]),
    "conv1d": one_node("Conv", {"x": [1, 3, 11]}, {"w": w(5, 3, 3)}, pads=[1, 1]),
    "depthwise": one_node("Conv", {"x": [1, 4, 6, 6]}, {"w": w(4, 1, 3, 3)}, group=4,
                          pads=[1, 1, 1, 1]),
    "conv_transpose": one_node("ConvTranspose", {"x": [1, 4, 5, 5]}, {"w": w(4, 3, 3, 3),
                               "b": w(3)}, strides=[2, 2], pads=[1, 1, 1, 1],
                               output_padding=[1, 1]),
    "conv_transpose_groups": one_node("ConvTranspose", {"x": [1, 4, 4, 3]},
                                      {"w": w(4, 1, 2, 3)}, group=2, strides=[2, 1],
                                      dilations=[1, 2]),
    "matmul_batched": one_node("MatMul", {"a": [2, 1, 3, 4], "b": [5, 4, 6]}),
    "matmul_vector": one_node("MatMul", {"a": [3, 4]}, {"v": w(4)}),
    "gemm_transposed": one_node("Gemm", {"a": [4, 3]}, {"b": w(5, 4), "c": w(5)}, transA=1,
                                transB=1, alpha=0.5, beta=2.0),
    "maxpool": one_node("MaxPool", {"x": [1, 2, 7, 7]}, kernel_shape=[3, 3], strides=[2, 2],
                        pads=[1, 1, 1, 1]),
    "avgpool_exclude_pad": one_node("AveragePool", {"x": [1, 2, 6, 5]}, kernel_shape=[3, 2],
                                    pads=[1, 1, 1, 0]),
    "avgpool_include_pad": one_node("AveragePool", {"x": [1, 2, 6, 5]}, kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    "global_avgpool": one_node("GlobalAveragePool", {"x": [1, 3, 5, 4]}),
    "softmax_axis1": one_node("Softmax", {"x": [2, 5, 3]}, axis=1),
    "layernorm": one_node("LayerNormalization", {"x": [2, 3, 8]}, {"s": w(8), "b": w(8)},
                          axis=-1, epsilon=1e-5),
    "layernorm_two_axes": one_node("LayerNormalization", {"x": [2, 3, 4]}, {"s": w(3, 4)},
                                   axis=1),
    "reducemean": one_node("ReduceMean", {"x": [2, 3, 4]}, axes=[1], keepdims=0),
    "reducesum_input_axes": one_node("ReduceSum", {"x": [2, 3, 4]},
                                     {"axes": np.array([0, 2], np.int64)}),
    "transpose": one_node("Transpose", {"x": [2, 3, 4]}, perm=[2, 0, 1]),
    "reshape": one_node("Reshape", {"x": [2, 3, 4]}, {"s": np.array([0, -1, 2], np.int64)}),
    "reshape_split": one_node("Reshape", {"x": [6, 10]}, {"s": np.array([3, 4, 5], np.int64)}),
    "flatten": one_node("Flatten", {"x": [2, 3, 4, 5]}, axis=2),
    "concat": one_node("Concat", {"a": [2, 3], "b": [2, 1], "c": [2, 4]}, axis=1),
    "slice": one_node("Slice", {"x": [6, 7]}, {"st": np.array([5, 1], np.int64),
                      "en": np.array([0, 7], np.int64), "ax": np.array([0, 1], np.int64),
                      "sp": np.array([-2, 3], np.int64)}),
    "squeeze": one_node("Squeeze", {"x": [2, 1, 3, 1]}, {"a": np.array([1, 3], np.int64)}),
    "unsqueeze": one_node("Unsqueeze", {"x": [2, 3]}, {"a": np.array([0, -1], np.int64)}),
}
POSITIVE = {
    "sqrt": one_node("Sqrt", {"x": [3, 3]}),
    "pow_half": one_node("Pow", {"x": [4, 4]}, {"p": np.float32(0.5)}),
    "pow_general": one_node("Pow", {"x": [4, 4]}, {"p": np.float32(1.7)}),
}


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_onnxruntime(name, layout):
    check_against_ort(CASES[name], layout=layout)


@pytest.mark.parametrize("name", sorted(POSITIVE))
def test_op_on_positive_inputs_matches_onnxruntime(name):
    check_against_ort(POSITIVE[name], positive=True)


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_conv_attributes_match_onnxruntime(data):
    groups = data.draw(st.sampled_from([1, 2, 3]))
    cin, cout = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    k = [data.draw(st.integers(1, 3)) for _ in range(2)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(2)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(2)]
    pads = [data.draw(st.integers(0, kk - 1)) for kk in k * 2]
    size = [(kk - 1) * d + 1 + data.draw(st.integers(0, 4)) for kk, d in zip(k, dil, strict=True)]
    model = one_node("Conv", {"x": [1, cin, *size]}, {"w": w(cout, cin // groups, *k)},
                     group=groups, dilations=dil, strides=strides, pads=pads)
    check_against_ort(model)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=2),
       st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 4))
def test_matmul_broadcast_matches_onnxruntime(batch_a, batch_b, n):
    batch_b = [1 if (i < len(batch_a) and batch_a[-1 - i] != b and b != 1) else b
               for i, b in enumerate(reversed(batch_b))][::-1]
    check_against_ort(one_node("MatMul", {"a": [*batch_a, n, 3], "b": [*batch_b, 3, 2]}))


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(0, 1))
def test_pooling_matches_onnxruntime(k, stride, pad, include):
    pad = min(pad, k - 1)
    for op, extra in (("MaxPool", {}), ("AveragePool", {"count_include_pad": include})):
        check_against_ort(one_node(op, {"x": [1, 2, 6, 7]}, kernel_shape=[k, k],
                                   strides=[stride, stride], pads=[pad] * 4, **extra))
