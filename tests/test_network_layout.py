"""The layout pass (network/layout.py, network/channels_last.py): convolutions and the ops
between them channels-last, NCHW at the edges and where an op needs it, weights transformed
once, inverse transposes cancelled; every model checked against onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from onnx_check import check_against_ort, one_node, onnx

import probsched as ps
from probsched.driver.cli import main
from probsched.network.channels_last import NHWC, channels_last_emit, inverse
from probsched.network.graph import Emitter, PermuteOp
from probsched.network.layout import apply_layout
from probsched.network.models import ModelBuilder, mobilenet_v2, resnet18
from probsched.network.onnx_import import import_model
from probsched.search.database import Database

RESNET18_NHWC_TASKS = [
    ("to_nhwc_conv_relu", 1), ("maxpool", 1), ("conv_relu", 2), ("conv_add_relu", 2),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("conv_relu", 1), ("conv", 1), ("conv_add_relu", 2), ("conv_relu", 1),
    ("gavgpool_to_nchw_reshape", 1), ("matmul", 1),
]


def transforms(net) -> list[tuple[str, str, str]]:
    """(kind, input, output) of every transpose left in the network's graph."""
    return [(op.kind, op.inputs[0], op.output) for op in net.graph.ops
            if isinstance(op, PermuteOp)]


def conv_bn_relu_pool():
    """x (1 x 3 x 8 x 8) -> Conv 3x3 -> BatchNormalization -> Relu -> MaxPool 2x2."""
    b = ModelBuilder(seed=0)
    y = b.conv_bn("x", 3, 4, 3)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    return b.model("conv_bn_relu_pool", [("x", [1, 3, 8, 8])], y, [1, 4, 4, 4])


def graph_model(nodes, inputs: dict, output: str, consts: dict | None = None):
    """A model of ``nodes`` (onnx.helper nodes): ``inputs`` name -> shape, one output."""
    h = onnx.helper
    graph = h.make_graph(
        nodes, "m", [h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s)
                     for n, s in inputs.items()],
        [h.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.asarray(v), n) for n, v in (consts or {}).items()])
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def node(op, inputs, output, **attrs):
    return onnx.helper.make_node(op, inputs, [output], name=output, **attrs)


def weights(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3


def test_conv_bn_relu_pool_graph_and_tasks(golden):
    model = conv_bn_relu_pool()
    net = check_against_ort(model)
    golden(str(net.graph) + "\n\n" + "\n\n".join(str(t.workload) for t in net.tasks))
    assert transforms(net) == [("to_nhwc", "x", "x:nhwc"),
                               ("to_nchw", "maxpool9:nhwc", "maxpool9")]
    assert [t.name for t in net.tasks] == ["to_nhwc_conv_relu", "maxpool_to_nchw"]
    imported = ps.load_onnx(model, layout="nchw").graph
    np.testing.assert_array_equal(net.graph.constants["conv2:folded_w:hwio"],
                                  imported.constants["conv2:folded_w"].transpose(2, 3, 1, 0))
    assert "conv2:folded_w" not in net.graph.constants  # only the transformed copy is kept


def test_resnet18_tasks_are_nhwc_and_still_dedup():
    net = ps.load_onnx(resnet18(small=True))
    assert [(t.name, t.weight) for t in net.tasks] == RESNET18_NHWC_TASKS
    assert sum(t.weight for t in net.tasks) == len(net.steps) == 23
    assert len(net.tasks) == len(ps.load_onnx(resnet18(small=True), layout="nchw").tasks)
    assert transforms(net) == [("to_nhwc", "input", "input:nhwc"),
                               ("to_nchw", "globalaveragepool167:nhwc", "globalaveragepool167")]
    conv = net.tasks[3].workload.stage("conv1")
    assert conv.shape == (1, 8, 8, 8) and conv.reduce_axes == (("r0", 3), ("r1", 3), ("rc", 8))
    assert net.tasks[3].workload.inputs[1].shape == (3, 3, 8, 8)  # HWIO


def test_mobilenet_v2_depthwise_convs_run_nhwc():
    net = ps.load_onnx(mobilenet_v2(small=True))
    assert {t.name for t in net.tasks} == {"to_nhwc_conv_clip", "conv", "conv_clip",
                                           "conv_add", "gavgpool_to_nchw_reshape", "matmul"}
    assert len(transforms(net)) == 2
    depthwise = next(op for op in net.graph.ops if op.kind == "conv"
                     and net.graph.shape(op.inputs[1])[2] == 1)
    assert net.graph.shape(depthwise.inputs[1])[:2] == (3, 3)  # kh x kw x 1 x C


C, H, W = 4, 6, 5
FOLLOWERS = {  # op after a conv and relu: (op type, extra inputs (constants), attributes)
    "avgpool_exclude_pad": ("AveragePool", {}, dict(kernel_shape=[3, 2], pads=[1, 1, 1, 0])),
    "avgpool_include_pad": ("AveragePool", {}, dict(kernel_shape=[3, 3], strides=[2, 2],
                                                    pads=[1, 1, 1, 1], count_include_pad=1)),
    "maxpool": ("MaxPool", {}, dict(kernel_shape=[2, 3], strides=[2, 1])),
    "global_maxpool": ("GlobalMaxPool", {}, {}),
    "batchnorm": ("BatchNormalization", {"g": weights(C), "b": weights(C, seed=1),
                                         "m": weights(C, seed=2),
                                         "v": np.abs(weights(C, seed=3)) + 0.5}, {}),
    "softmax_channels": ("Softmax", {}, dict(axis=1)),
    "softmax_height": ("Softmax", {}, dict(axis=2)),
    "softmax_last": ("Softmax", {}, dict(axis=-1)),
    "reducemax_keepdims": ("ReduceMax", {}, dict(axes=[1, 3], keepdims=1)),
    "reducesum_channels_dropped": ("ReduceSum", {"axes": np.array([1], np.int64)},
                                   dict(keepdims=0)),
    "layernorm_spatial": ("LayerNormalization", {"s": weights(H, W), "b": weights(H, W)},
                          dict(axis=2)),
    "slice_channels": ("Slice", {"st": np.array([1], np.int64), "en": np.array([3], np.int64),
                                 "ax": np.array([1], np.int64)}, {}),
    "concat_channels": ("Concat", {}, dict(axis=1)),
    "add_channel_bias": ("Add", {"bias": weights(C, 1, 1)}, {}),
    "mul_4d_constant": ("Mul", {"k": weights(1, C, 1, W)}, {}),
    "clip": ("Clip", {"lo": np.float32(-0.2), "hi": np.float32(0.3)}, {}),
    "sigmoid": ("Sigmoid", {}, {}),
    "pow2": ("Pow", {"p": np.float32(2.0)}, {}),
}


@pytest.mark.parametrize("name", sorted(FOLLOWERS))
def test_ops_after_a_convolution_run_nhwc_and_match_onnxruntime(name):
    """Each op that follows its input's layout, after a convolution: it reads the NHWC
    value (its axes remapped by the channels-last emission), and the result is right."""
    op_type, consts, attrs = FOLLOWERS[name]
    inputs = ["a", "a"] if op_type == "Concat" else ["a", *consts]
    model = graph_model([node("Conv", ["x", "w"], "c"), node("Relu", ["c"], "a"),
                         node(op_type, inputs, "y", **attrs)],
                        {"x": [1, 3, H, W]}, "y", {"w": weights(C, 3, 1, 1), **consts})
    net = check_against_ort(model)
    follower = next(op for op in net.graph.ops if op.node == "y")
    assert follower.inputs[0] == "a:nhwc"


def test_transposes_of_an_nhwc_model_cancel():
    """A model exported from an NHWC framework transposes to NCHW around its convolution;
    channels-last, both transposes cancel with the transforms the pass puts there."""
    model = graph_model(
        [node("Transpose", ["x"], "t", perm=[0, 3, 1, 2]),
         node("Conv", ["t", "w"], "c", pads=[1, 1, 1, 1]),
         node("Relu", ["c"], "r"),
         node("Transpose", ["r"], "y", perm=[0, 2, 3, 1])],
        {"x": [1, 6, 6, 3]}, "y", {"w": weights(4, 3, 3, 3)})
    net = check_against_ort(model)
    assert transforms(net) == []
    assert [(op.kind, op.inputs[0], op.output) for op in net.graph.ops] == [
        ("conv", "x", "c:nhwc"), ("relu", "c:nhwc", "y")]
    assert len(transforms(check_against_ort(model, layout="nchw"))) == 2


@settings(max_examples=8, deadline=None)
@given(st.permutations(range(4)), st.permutations(range(4)), st.booleans())
def test_adjacent_transposes_cancel_only_when_inverse(p, q, make_inverse):
    """relu, Transpose(p), Transpose(q), relu: the pair goes exactly when q undoes p, and
    the result is onnxruntime's either way."""
    q = list(inverse(p)) if make_inverse else q
    model = graph_model(
        [node("Relu", ["x"], "a"), node("Transpose", ["a"], "b", perm=list(p)),
         node("Transpose", ["b"], "c", perm=list(q)), node("Relu", ["c"], "y")],
        {"x": [2, 3, 4, 5]}, "y")
    net = check_against_ort(model)
    identity = [p[k] for k in q] == [0, 1, 2, 3]
    assert len(transforms(net)) == (0 if identity else 2)


BLOCKS = ("conv", "depthwise", "relu", "maxpool", "softmax", "concat", "add_skip",
          "reshape_round_trip", "transpose_pair")


def chain_model(blocks, seed: int = 0):
    """x (1 x 3 x 6 x 6) through ``blocks`` (of :data:`BLOCKS`), each keeping 6 x 6."""
    nodes, consts, v, c = [], {}, "x", 3
    for k, block in enumerate(blocks):
        out = f"b{k}"
        if block in ("conv", "depthwise"):
            groups, cout = (c, c) if block == "depthwise" else (1, 4)
            consts[f"w{k}"] = weights(cout, c // groups, 3, 3, seed=seed + k)
            nodes.append(node("Conv", [v, f"w{k}"], out, pads=[1, 1, 1, 1], group=groups))
            c = cout
        elif block == "relu":
            nodes.append(node("Relu", [v], out))
        elif block == "maxpool":
            nodes.append(node("MaxPool", [v], out, kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        elif block == "softmax":
            nodes.append(node("Softmax", [v], out, axis=1 + k % 3))
        elif block == "concat":
            nodes.append(node("Concat", [v, v], out, axis=1))
            c *= 2
        elif block == "add_skip":
            nodes += [node("Relu", [v], f"{out}r"), node("Add", [f"{out}r", v], out)]
        elif block == "reshape_round_trip":
            consts[f"s{k}"], consts[f"t{k}"] = (np.array([1, c, 36], np.int64),
                                                np.array([1, c, 6, 6], np.int64))
            nodes += [node("Reshape", [v, f"s{k}"], f"{out}f"), node("Relu", [f"{out}f"],
                                                                     f"{out}g"),
                      node("Reshape", [f"{out}g", f"t{k}"], out)]
        else:
            nodes += [node("Transpose", [v], f"{out}t", perm=[0, 2, 3, 1]),
                      node("Transpose", [f"{out}t"], out, perm=[0, 3, 1, 2])]
        v = out
    return graph_model(nodes, {"x": [1, 3, 6, 6]}, v, consts)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=5))
@example(["conv", "transpose_pair"])
@example(["transpose_pair", "transpose_pair"])
@example(["conv", "reshape_round_trip", "depthwise", "concat", "softmax", "add_skip"])
def test_transforms_sit_only_where_the_layout_changes(blocks):
    """Random chains of blocks: right in both layouts; channels-last, a to_nchw feeds only
    ops that read NCHW (or is an output), a to_nhwc reads only an input or a value an op
    running NCHW wrote, and no transpose reads one that it undoes (but where the pair is
    all there is between an input and an output)."""
    model = chain_model(blocks)
    check_against_ort(model, layout="nchw")
    graph = check_against_ort(model).graph
    nhwc_written = {op.output for op in graph.ops if op.output.endswith(":nhwc")}
    for op in graph.ops:
        if op.kind == "to_nchw":
            readers = [r for r in graph.ops if op.output in r.inputs]
            assert op.output in graph.outputs or readers
            assert all(r.kind in ("reshape", "to_hwio") for r in readers), str(graph)
        if op.kind == "to_nhwc":
            assert op.inputs[0] not in nhwc_written, str(graph)
    made_by = {op.output: op for op in graph.ops}
    for op in graph.ops:
        first = made_by.get(op.inputs[0])
        if isinstance(op, PermuteOp) and isinstance(first, PermuteOp) and not (
                first.inputs[0] in graph.inputs and op.output in graph.outputs):
            assert [first.perm[p] for p in op.perm] != [0, 1, 2, 3], str(graph)


def test_an_op_needing_nchw_in_the_middle_gets_transforms_there():
    """Reshape reads NCHW: the convolution before it transforms back, the one after it
    transforms again."""
    model = graph_model(
        [node("Conv", ["x", "w1"], "c1", pads=[1, 1, 1, 1]),
         node("Reshape", ["c1", "flat"], "f"),
         node("Softmax", ["f"], "s", axis=2),
         node("Reshape", ["s", "square"], "u"),
         node("Conv", ["u", "w2"], "y")],
        {"x": [1, 3, 5, 5]}, "y",
        {"w1": weights(4, 3, 3, 3), "w2": weights(2, 4, 1, 1, seed=1),
         "flat": np.array([1, 4, 25], np.int64), "square": np.array([1, 4, 5, 5], np.int64)})
    net = check_against_ort(model)
    assert transforms(net) == [("to_nhwc", "x", "x:nhwc"), ("to_nchw", "c1:nhwc", "c1"),
                               ("to_nhwc", "u", "u:nhwc"), ("to_nchw", "y:nhwc", "y")]


def test_axis_ops_follow_nhwc_with_their_axes_remapped():
    """Concat on channels, Softmax over channels and a ReduceMean over space between two
    convolutions stay channels-last: transforms only at the edges."""
    model = graph_model(
        [node("Conv", ["x", "w1"], "a", pads=[1, 1, 1, 1]),
         node("Relu", ["a"], "ra"),
         node("Concat", ["a", "ra"], "c", axis=1),
         node("Softmax", ["c"], "s", axis=1),
         node("ReduceMean", ["s"], "m", axes=[2, 3], keepdims=1),
         node("Mul", ["s", "m"], "p"),
         node("Conv", ["p", "w2"], "y")],
        {"x": [1, 3, 6, 5]}, "y", {"w1": weights(4, 3, 3, 3), "w2": weights(3, 8, 1, 1)})
    net = check_against_ort(model)
    assert transforms(net) == [("to_nhwc", "x", "x:nhwc"), ("to_nchw", "y:nhwc", "y")]
    assert all(op.output.endswith(":nhwc") for op in net.graph.ops if op.kind != "to_nchw")


def test_a_reduction_to_rank_two_reads_nhwc_without_a_transform():
    model = graph_model(
        [node("Conv", ["x", "w"], "a"), node("ReduceMean", ["a"], "y", axes=[2, 3],
                                             keepdims=0)],
        {"x": [1, 3, 4, 4]}, "y", {"w": weights(5, 3, 3, 3)})
    net = check_against_ort(model)
    assert transforms(net) == [("to_nhwc", "x", "x:nhwc")]
    assert net.graph.ops[-1].shape == (1, 5)


def test_weights_that_are_not_constant_are_transformed_by_an_op():
    model = graph_model([node("Conv", ["x", "w"], "y", pads=[0, 1, 0, 1])],
                        {"x": [1, 2, 5, 5], "w": [3, 2, 1, 3]}, "y")
    net = check_against_ort(model)
    assert ("to_hwio", "w", "w:hwio") in transforms(net)


def test_a_transform_read_by_two_tasks_is_a_planned_step():
    model = graph_model(
        [node("Conv", ["x", "w1"], "a"), node("Conv", ["x", "w2"], "b"),
         node("Add", ["a", "b"], "y")],
        {"x": [1, 3, 5, 5]}, "y", {"w1": weights(4, 3, 3, 3), "w2": weights(4, 3, 3, 3, seed=1)})
    net = check_against_ort(model)
    assert net.tasks[0].name == "to_nhwc" and net.steps[0].output == "x:nhwc"
    assert "x:nhwc" in net.compile().plan.slots


def test_a_permutation_that_does_not_fit_its_input_names_the_node():
    op = import_model(one_node("Relu", {"x": [2, 3]})).ops[0]
    em = Emitter("t")
    with pytest.raises(ps.ModelError, match=r"node 'the_node' \(relu\): input 'x' of shape "
                       r"\(2, 3\) cannot be read through a permutation of 4 axes"):
        channels_last_emit(op, [NHWC])(em, [em.input((2, 3))])
    with pytest.raises(ps.ModelError, match=r"node 'the_node' \(relu\): 2 permutations"):
        channels_last_emit(op, [NHWC, None])


def test_layouts_are_named_and_nchw_is_the_graph_as_imported():
    nchw = ps.load_onnx(conv_bn_relu_pool(), layout="nchw")
    assert apply_layout(nchw.graph, "nchw") is nchw.graph and transforms(nchw) == []
    with pytest.raises(ps.ModelError, match=r"layout 'nchwc' is not supported \(one of "
                       r"nhwc, nchw\)"):
        ps.load_onnx(conv_bn_relu_pool(), layout="nchwc")


def test_cli_takes_a_layout_and_a_database_serves_the_layout_it_was_tuned_in(tmp_path,
                                                                             capsys):
    path, db = tmp_path / "cbrp.onnx", str(tmp_path / "runs.db")
    onnx.save(conv_bn_relu_pool(), str(path))
    assert main(["tune-model", str(path), "--trials", "8", "--db", db, "--layout", "nchw",
                 "--strategy", "round-robin", "--quiet"]) == 0
    assert "2 tasks (nchw)" in capsys.readouterr().err
    with Database(db, readonly=True) as d:
        assert [n["layout"] for n in d.notes().values()] == ["nchw"]
    tuned = {}
    for layout in ("nchw", "nhwc"):
        assert main(["run-model", str(path), "--db", db, "--layout", layout, "--json",
                     "--repeats", "5"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["layout"] == layout and result["correct"] and result["tasks"] == 2
        tuned[layout] = result["tuned_tasks"]
    assert tuned["nchw"] >= 1 and tuned["nhwc"] == 0  # the NHWC tasks are other workloads
    with pytest.raises(SystemExit):
        main(["run-model", str(path), "--layout", "nchwc"])
