"""Whole models: fusion into tasks (golden task lists, in ONNX's layout: the channels-last
ones are in test_network_layout.py), deduplication weights, batch norms folded, the import's
errors, the buffer plan, and the small models end to end against onnxruntime in both layouts
(the full-size ones are slow)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_check import check_against_ort, one_node

import probsched as ps
from probsched.network.models import bert_layer, mobilenet_v2, resnet18

RESNET18_TASKS = [
    ("conv_relu", 1), ("maxpool", 1), ("conv_relu", 2), ("conv_add_relu", 2),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("gavgpool_reshape", 1), ("matmul", 1),
]
BERT_TASKS = [
    ("matmul_add_reshape_transpose", 2), ("matmul_add_reshape_transpose", 1),
    ("matmul_div", 1), ("softmax", 1), ("matmul_transpose_reshape", 1), ("matmul_add", 1),
    ("layernorm", 2), ("matmul_add_div_erf_mul", 1), ("matmul_add", 1),
]


def tasks(net):
    return [(t.name, t.weight) for t in net.tasks]


@pytest.mark.parametrize("small", [True, False])
def test_resnet18_tasks_and_weights(small):
    net = ps.load_onnx(resnet18(small=small), layout="nchw")
    assert tasks(net) == RESNET18_TASKS
    assert sum(t.weight for t in net.tasks) == len(net.steps) == 23
    assert not any(op.kind == "bn" for op in net.graph.ops)  # folded into the convs
    assert len({t.hash for t in net.tasks}) == len(net.tasks)


def test_bert_layer_tasks():
    assert tasks(ps.load_onnx(bert_layer(small=True))) == BERT_TASKS
    assert tasks(ps.load_onnx(bert_layer())) == BERT_TASKS


def test_mobilenet_v2_fuses_every_op_into_a_conv_task():
    net = ps.load_onnx(mobilenet_v2(small=True), layout="nchw")
    assert len(net.steps) == 54 and sum(t.weight for t in net.tasks) == 54
    names = {t.name for t in net.tasks}
    assert names == {"conv", "conv_clip", "conv_add", "gavgpool_reshape", "matmul"}


def test_task_workloads_are_named_canonically():
    net = ps.load_onnx(resnet18(small=True))
    wl = net.tasks[3].workload
    assert [t.name for t in wl.inputs] == ["x0", "x1", "x2", "x3"]
    assert [s.name for s in wl.stages] == ["pad0", "conv1", "bias2", "add3", "relu4"]
    assert net.tasks[3].hash == wl.structural_hash


def test_buffer_plan_reuses_memory():
    c = ps.load_onnx(resnet18(small=True)).compile()
    assert c.plan.bytes < c.naive_bytes / 2


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("build", [resnet18, mobilenet_v2, bert_layer])
def test_small_models_match_onnxruntime(build, layout):
    check_against_ort(build(small=True), layout=layout)


def test_sampled_schedules_match_onnxruntime():
    check_against_ort(bert_layer(small=True), schedule="sampled")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("build", [resnet18, mobilenet_v2, bert_layer])
def test_full_models_match_onnxruntime(build, layout):
    check_against_ort(build(), schedule="sampled", layout=layout)


def test_compiled_network_refuses_wrong_inputs():
    c = ps.load_onnx(one_node("Relu", {"x": [2, 3]})).compile()
    with pytest.raises(ps.ModelError, match="takes 1 inputs"):
        c()
    with pytest.raises(ps.ModelError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        c(np.zeros((3, 2), np.float32))


def test_unsupported_op_names_node_op_and_supported():
    with pytest.raises(ps.ModelError, match=r"node 'the_node': op Gather is not supported; "
                       r"supported ops: .*Conv.*"):
        ps.load_onnx(one_node("Gather", {"x": [3]}, {"i": np.array([0], np.int64)}))


def test_unsupported_attribute_names_it():
    with pytest.raises(ps.ModelError, match=r"node 'the_node' \(MaxPool\): ceil_mode=1"):
        ps.load_onnx(one_node("MaxPool", {"x": [1, 1, 4, 4]}, kernel_shape=[2, 2], ceil_mode=1))
    with pytest.raises(ps.ModelError, match=r"\(Softmax\): attribute bogus is not supported "
                       r"\(supported: axis\)"):
        ps.load_onnx(one_node("Softmax", {"x": [2, 2]}, bogus=1))


def test_old_opset_and_dynamic_shapes_are_refused():
    with pytest.raises(ps.ModelError, match="opset is 11; 13 and later"):
        ps.load_onnx(one_node("Relu", {"x": [2]}, opset=11))
    with pytest.raises(ps.ModelError, match="dynamic shape"):
        ps.load_onnx(one_node("Relu", {"x": ["n", 2]}))
    net = ps.load_onnx(one_node("Relu", {"x": ["n", 2]}), shapes={"x": (3, 2)})
    assert net.graph.inputs == {"x": (3, 2)}


def test_constant_subgraphs_fold_at_import():
    model = one_node("Add", {}, {"a": np.ones(3, np.float32), "b": np.ones(3, np.float32)})
    with pytest.raises(ps.ModelError, match="is a constant"):
        ps.load_onnx(model)


def test_every_array_a_compiled_network_binds_is_64_byte_aligned():
    # the runner times candidates on 64-byte-aligned buffers; a network on unaligned ones
    # ran its kernels slower than their tuned timings
    c = ps.load_onnx(resnet18(small=True)).compile()
    assert all(a.ctypes.data % 64 == 0 for a in c._keep.values())
