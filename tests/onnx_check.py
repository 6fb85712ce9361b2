"""What the network tests share: one-node ONNX models and a comparison of the compiled
network with onnxruntime on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: "
                           "pip install 'probsched[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: "
                          "pip install 'probsched[onnx]'")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import probsched as ps  # noqa: E402


def one_node(op: str, inputs: dict, consts: dict | None = None, opset: int = 17, **attrs):
    """A model of one node: ``inputs`` name -> shape (graph inputs, random at run time),
    ``consts`` name -> array (initializers), in the node's input order as given (inputs
    first unless ``order`` names them)."""
    consts = consts or {}
    order = attrs.pop("order", [*inputs, *consts])
    node = helper.make_node(op, order, ["y"], name="the_node", **attrs)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                        for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def run_ort(model, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def random_feeds(net, seed: int = 0, positive: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in net.graph.inputs.items():
        x = rng.standard_normal(shape).astype(np.float32)
        feeds[name] = np.abs(x) + 0.1 if positive else x
    return feeds


def check_against_ort(model, *, positive: bool = False, rtol: float = 1e-4,
                      schedule: str = "naive", seed: int = 0, layout: str = "nhwc"):
    """Compile the model's network in ``layout``, run it and onnxruntime on the same random
    inputs and compare (relative to the output's magnitude); returns the network."""
    net = ps.load_onnx(model, layout=layout)
    feeds = random_feeds(net, seed, positive)
    got = net.compile(schedule=schedule)(*feeds.values())
    want = run_ort(model, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * (1 + float(np.abs(w).max())))
    return net
