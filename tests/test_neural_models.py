"""The neural cost models (search/neural.py, gnn_model.py, tlp_model.py): the CostModel
contract, determinism, invariances, learning a simple order, and how the tuner and the CLI
pick them (and say what is missing without PyTorch). Tiny networks and short fits."""

import numpy as np
import pytest

from probsched.driver.bench.costmodel import random_schedules
from probsched.errors import ResourceError
from probsched.search import neural
from probsched.search.cost_model import CostModel, pairwise_accuracy
from probsched.search.features import FEATURE_NAMES, program_features
from probsched.search.graph_features import ProgramGraph, batch_graphs
from probsched.search.model_choice import make_cost_model, neural_cost_model
from probsched.workloads import gmm

_SCHEDULES = random_schedules(gmm(b=1, n=32, m=32, k=64), 48, seed=11)
_PROGRAMS = [s.program for s in _SCHEDULES]
_TRACES = [s.trace for s in _SCHEDULES]
_FLOPS = FEATURE_NAMES.index("vec_len")


def _latencies() -> np.ndarray:
    """A made-up latency the models can learn: longer the shorter the vectorized loop of
    the heaviest store, plus a little of the seed's noise."""
    vec = np.array([program_features(p)[:, _FLOPS].max() for p in _PROGRAMS])
    return 1e-3 / (1.0 + vec) + np.random.default_rng(0).random(len(vec)) * 1e-5


def _model(name: str, seed: int = 0, **config):
    pytest.importorskip("torch", reason="the neural cost models need PyTorch (the dl extra)")
    base = {"min_records": 8, "min_steps": 30, "epochs": 2, "hidden": 8, "batch": 32, "threads": 1,
            "chunk": 16}
    return neural_cost_model(name, seed, **{**base, **config})


@pytest.mark.parametrize("name", neural.NEURAL_MODELS)
def test_contract_and_determinism(name):
    a, b = _model(name), _model(name)
    assert isinstance(a, CostModel)
    before = a.predict(_PROGRAMS[:5], _TRACES[:5])  # seeded random until fitted
    assert before.shape == (5,) and not a.fitted
    lat = _latencies()
    lat[3] = np.inf  # a failed record
    for m in (a, b):
        m.update(_PROGRAMS[:40], _TRACES[:40], lat[:40], "w")
        assert m.fitted and m.n_records == 40
    pa = a.predict(_PROGRAMS[40:], _TRACES[40:])
    assert pa.shape == (8,) and np.isfinite(pa).all()
    np.testing.assert_array_equal(pa, b.predict(_PROGRAMS[40:], _TRACES[40:]))
    assert a.predict([], []).shape == (0,)


@pytest.mark.parametrize("name", neural.NEURAL_MODELS)
def test_scores_do_not_depend_on_the_batch(name):
    m = _model(name)
    m.update(_PROGRAMS, _TRACES, _latencies(), "w")
    items = m.encode(_PROGRAMS, _TRACES)
    whole = m.predict_items(items)
    perm = np.random.default_rng(1).permutation(len(items))
    np.testing.assert_allclose(m.predict_items([items[k] for k in perm]), whole[perm],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.predict_items(items, block=7), whole, rtol=1e-4, atol=1e-5)


def test_gnn_score_of_a_renumbered_graph_is_the_same():
    m = _model("gnn")
    m.update(_PROGRAMS, _TRACES, _latencies(), "w")
    g = m.encode(_PROGRAMS[:1], None)[0]
    rng = np.random.default_rng(2)
    # renumber the nodes within each type (a batch keeps nodes grouped by type)
    perm = np.concatenate([rng.permutation(np.flatnonzero(g.node_type == t))
                           for t in range(3)])
    new_id = np.empty_like(perm)
    new_id[perm] = np.arange(len(perm))
    edges = rng.permutation(len(g.src))
    same = ProgramGraph(g.x[perm], g.node_type[perm], new_id[g.src][edges],
                        new_id[g.dst][edges], g.edge_type[edges], g.edge_weight[edges])
    np.testing.assert_allclose(m.predict_items([same]), m.predict_items([g]), rtol=1e-4,
                               atol=1e-5)


def test_gnn_forward_is_the_documented_message_passing():
    """The network (which maps states per edge type before it sums them) against the
    module docstring's definition written out with numpy: per node and edge type the
    weighted mean of the neighbours' states, concatenated, mapped back, residual."""
    torch = pytest.importorskip("torch", reason="needs PyTorch (the dl extra)")
    m = _model("gnn")
    m.update(_PROGRAMS, _TRACES, _latencies(), "w")
    graphs = m.encode(_PROGRAMS[:3], None)
    batch = m.collate(graphs)
    net = m._net
    parts, graph, _, n_graphs = batch
    b = batch_graphs(graphs)
    src, dst, etype, weight = b.src, b.dst, b.edge_type, b.edge_weight
    p = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    h = np.concatenate([relu(((x.numpy() - p[f"mean{t}"]) / p[f"std{t}"]) @ p[f"embed.{t}.weight"].T
                             + p[f"embed.{t}.bias"]) for t, x in enumerate(parts)])
    n, d = h.shape
    for r in range(len(net.own)):
        agg = np.zeros((n, 4, d))
        for s_, t_, e_, w_ in zip(src, dst, etype, weight, strict=True):
            agg[t_, e_] += w_ * h[s_]
        own = h @ p[f"own.{r}.weight"].T + p[f"own.{r}.bias"]
        h = h + relu(own + agg.reshape(n, 4 * d) @ p[f"messages.{r}.weight"].T)
    g = graph.numpy()
    pooled = np.concatenate([np.stack([h[g == k].mean(0) for k in range(n_graphs)]),
                             np.stack([h[g == k].max(0) for k in range(n_graphs)])], axis=1)
    hidden = relu(pooled @ p["head.0.weight"].T + p["head.0.bias"])
    want = (hidden @ p["head.2.weight"].T + p["head.2.bias"])[:, 0]
    with torch.inference_mode():
        got = net(*batch).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", neural.NEURAL_MODELS)
def test_learns_a_simple_order(name):
    m = _model(name, min_steps=150)
    lat = _latencies()
    m.update(_PROGRAMS, _TRACES, lat, "w")
    assert pairwise_accuracy(m.predict(_PROGRAMS, _TRACES), 1 / lat) > 0.75


def test_mse_loss_and_graphs_as_input():
    m = _model("gnn", loss="mse")
    graphs = [m.featurize(p) for p in _PROGRAMS]
    m.update(graphs, None, _latencies(), "w")
    assert m.predict(graphs[:3], None).shape == (3,)
    with pytest.raises(TypeError, match="gnn cost model takes programs"):
        m.predict([np.zeros(3)], None)


def test_the_tuner_names_the_extra_without_torch(monkeypatch):
    monkeypatch.setattr(neural, "torch_missing", lambda: "PyTorch is not installed (test)")
    for name in neural.NEURAL_MODELS:
        with pytest.raises(ResourceError, match=r"probsched\[dl\]"):
            make_cost_model(name, 0, 32)


def test_the_tuner_and_the_cli_pick_them():
    pytest.importorskip("torch", reason="the neural cost models need PyTorch (the dl extra)")
    from probsched.driver.cli import build_parser
    from probsched.search.gnn_model import GNNModel
    from probsched.search.tlp_model import TLPModel

    assert isinstance(make_cost_model("gnn", 0, 32), GNNModel)
    assert isinstance(make_cost_model("tlp", 0, 32), TLPModel)
    args = build_parser().parse_args(["tune", "x.sched", "--trials", "4", "--cost-model", "tlp"])
    assert args.cost_model == "tlp"
