"""Weights blocked once at load (network/weight_blocking.py): the packing itself, which ops
get it (constant weights whose column axis is the output's last, a multiple of 16: MatMul and
Gemm, transB too, and Conv, depthwise too), one packed copy per shared weight, and every
model checked against onnxruntime, plain and sampled from the generated space."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx_check import check_against_ort, onnx

import probsched as ps
from probsched.network.weight_blocking import BLOCK, blocked_array


def model(nodes, x_shape, consts, inputs=()):
    h = onnx.helper
    graph = h.make_graph(
        nodes, "m",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape),
         *(h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs)],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(v.astype(np.float32), n) for n, v in consts.items()])
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def weights(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def matmul_inputs(net) -> list[str]:
    return [op.inputs[1] for op in net.graph.ops if op.kind == "matmul"]


@given(k=st.integers(1, 9), blocks=st.integers(1, 3), axis=st.sampled_from([0, 1]))
def test_blocked_array_holds_each_column_at_its_block(k, blocks, axis):
    n = blocks * BLOCK
    w = np.arange(k * n, dtype=np.float32).reshape((k, n) if axis == 1 else (n, k))
    b = blocked_array(w, axis)
    assert b.shape == (blocks, k, BLOCK) and b.flags.c_contiguous
    for j in range(n):
        for r in range(k):
            assert b[j // BLOCK, r, j % BLOCK] == (w[r, j] if axis == 1 else w[j, r])


@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), data=st.data())
def test_blocked_array_of_any_rank_moves_the_blocks_first(shape, data):
    axis = data.draw(st.integers(0, len(shape)))
    full = (*shape[:axis], 2 * BLOCK, *shape[axis:])
    w = np.arange(int(np.prod(full)), dtype=np.float32).reshape(full)
    b = blocked_array(w, axis)
    assert b.shape == (2, *shape, BLOCK)
    for idx in np.ndindex(*full):
        j, rest = idx[axis], idx[:axis] + idx[axis + 1:]
        assert b[(j // BLOCK, *rest, j % BLOCK)] == w[idx]


@pytest.mark.parametrize("group", [1, 32])
def test_conv_weight_is_blocked_and_still_right(group):
    h = onnx.helper
    m = model([h.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], group=group)],
              [1, 32, 5, 5], {"w": weights(32, 32 // group, 3, 3), "b": weights(32, seed=1)})
    net = check_against_ort(m, schedule="sampled")
    (task,) = net.tasks
    assert task.workload.inputs[1].shape == (2, 3, 3, 32 // group, 16)  # co blocks, HWI, 16
    assert [n for n in net.graph.constants if n.startswith("w")] == ["w:hwio:blocked16"]


@pytest.mark.parametrize("schedule", ["naive", "sampled"])
def test_matmul_weight_is_blocked_and_still_right(schedule):
    h = onnx.helper
    m = model([h.make_node("MatMul", ["x", "w"], ["a"]), h.make_node("Relu", ["a"], ["y"])],
              [1, 5, 24], {"w": weights(24, 32)})
    net = check_against_ort(m, schedule=schedule)
    assert matmul_inputs(net) == ["w:blocked16"]
    assert "w" not in net.graph.constants  # nothing else reads it
    (task,) = net.tasks
    assert [t.shape for t in task.workload.inputs] == [(1, 5, 24), (2, 24, 16)]


def test_gemm_transposed_weight_with_bias_is_blocked():
    h = onnx.helper
    m = model([h.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5)],
              [3, 20], {"w": weights(48, 20), "c": weights(48, seed=1)})
    net = check_against_ort(m, schedule="sampled")
    assert matmul_inputs(net) == ["w:blocked16"]
    assert net.graph.constants["w:blocked16"].shape == (3, 20, 16)


def test_a_shared_weight_is_packed_once():
    h = onnx.helper
    m = model([h.make_node("MatMul", ["x", "w"], ["a"]), h.make_node("Relu", ["a"], ["b"]),
               h.make_node("MatMul", ["b", "w"], ["y"])], [4, 16], {"w": weights(16, 16)})
    net = check_against_ort(m)
    assert matmul_inputs(net) == ["w:blocked16", "w:blocked16"]
    assert [n for n in net.graph.constants if n.startswith("w")] == ["w:blocked16"]


def test_what_is_not_blocked():
    h = onnx.helper
    ragged = model([h.make_node("MatMul", ["x", "w"], ["y"])], [2, 8], {"w": weights(8, 20)})
    assert matmul_inputs(check_against_ort(ragged)) == ["w"]  # 20 columns: not whole blocks
    given_b = model([h.make_node("MatMul", ["x", "b"], ["y"])], [2, 8], {},
                    inputs=[("b", [8, 16])])
    assert matmul_inputs(check_against_ort(given_b)) == ["b"]  # not a constant
    square = model([h.make_node("MatMul", ["x", "w"], ["y"])], [2, 16], {"w": weights(16, 16)})
    assert matmul_inputs(check_against_ort(square, layout="nchw")) == ["w"]  # as imported
    net = ps.load_onnx(square)
    assert matmul_inputs(net) == ["w:blocked16"]
