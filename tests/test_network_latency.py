"""Network latency prediction (probsched/network/latency.py, latency_graph.py): assignments
compiled and checked, the kernel model's and the predictor's contracts (determinism, the sum
baseline), the graph model's fit and its file, error reporting, and the bench's scoring on
made-up measurements (no timing here: the figures are `probsched bench --suite latency`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.driver.bench.latency import ModelData, evaluate
from probsched.errors import ModelError
from probsched.ir.program import lower
from probsched.lang.loader import generated_space
from probsched.network.latency import (
    KernelLatencyModel,
    LatencyPredictor,
    assignment_programs,
    compile_assignment,
    latency_errors,
    spearman,
)
from probsched.network.latency_graph import (
    READOUT_NAMES,
    GraphLatencyModel,
    node_matrix,
    readout,
)
from probsched.network.models import bert_layer


@pytest.fixture(scope="module")
def net():
    return ps.load_onnx(bert_layer(small=True))


def sampled(net, seed: int):
    """An assignment: a sample of the generated space per task (the plain lowering where
    the space refuses it)."""
    out = {}
    for t in net.tasks:
        sch = ps.Schedule(t.workload, seed=seed)
        try:
            generated_space().apply(sch)
            out[t.hash] = sch.trace
        except ps.ProbschedError:
            out[t.hash] = None
    return out


@pytest.fixture(scope="module")
def kernels(net):
    """A kernel model fitted on made-up latencies (proportional to the flops plus a
    constant), for the contracts only."""
    programs, seconds = [], []
    for seed in range(3):
        for h, program in assignment_programs(net, sampled(net, seed)).items():
            programs.append(program)
            seconds.append(1e-6 + 1e-12 * next(t.flops for t in net.tasks if t.hash == h))
    return KernelLatencyModel(iterations=20).fit(programs, seconds)


def test_an_assignment_compiles_to_the_networks_outputs(net):
    x = np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)
    want = net.compile(schedule="naive")(x)[0]
    got = compile_assignment(net, sampled(net, 1))(x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    plain = net.compile_assignment({t.hash: None for t in net.tasks})
    np.testing.assert_allclose(plain(x)[0], want, rtol=1e-5, atol=1e-6)


def test_a_bad_assignment_names_the_task(net):
    everything = {t.hash: None for t in net.tasks}
    with pytest.raises(ModelError, match="no task with hash deadbeef"):
        assignment_programs(net, {**everything, "deadbeef": None})
    first = net.tasks[0]
    with pytest.raises(ModelError, match=f"no schedule for task.*{first.hash}"):
        assignment_programs(net, {h: v for h, v in everything.items() if h != first.hash})
    other = ps.Schedule(ps.workloads.gmm(b=1, n=8, m=8, k=8), seed=0)
    generated_space().apply(other)
    with pytest.raises(ModelError, match=f"task {first.name} \\({first.hash}\\) does not"):
        assignment_programs(net, {**everything, first.hash: other.trace})


def test_the_prediction_is_deterministic_and_sums_the_kernels(net, kernels):
    assignment = sampled(net, 4)
    a = LatencyPredictor(kernels).predict(net, assignment)
    b = net.predict_latency(assignment, LatencyPredictor(kernels))
    assert a == b
    assert a.graph_s is None and a.best_s == a.sum_s
    assert set(a.kernel_s) == {t.hash for t in net.tasks}
    assert a.sum_s == pytest.approx(sum(t.weight * a.kernel_s[t.hash] for t in net.tasks))
    again = KernelLatencyModel(iterations=20).fit(
        [lower(t.workload) for t in net.tasks] * 2, [1e-5, 2e-5] * len(net.tasks))
    assert np.array_equal(again.predict([lower(net.tasks[0].workload)]),
                          again.predict([lower(net.tasks[0].workload)]))


def test_the_kernel_model_refuses_what_it_cannot_use(net):
    plain = [lower(t.workload) for t in net.tasks]
    with pytest.raises(ModelError, match="predict before fit"):
        KernelLatencyModel().predict(plain)
    with pytest.raises(ModelError, match="1 measured kernels, need at least 2"):
        KernelLatencyModel().fit(plain[:3], [1e-5, float("inf"), float("nan")])
    with pytest.raises(ModelError, match="3 programs but 2 latencies"):
        KernelLatencyModel().fit(plain[:3], [1e-5, 1e-5])


def test_a_seen_workloads_prediction_stays_near_its_measured_range(net):
    plain = [lower(t.workload) for t in net.tasks[:2]]
    keys = [t.hash for t in net.tasks[:2]]
    model = KernelLatencyModel(iterations=20).fit(plain * 2, [1e-5, 1e-3] * 2, keys * 2)
    assert model.ranges == {keys[0]: (1e-5, 1e-5), keys[1]: (1e-3, 1e-3)}
    pred = model.predict(plain, keys)
    margin = KernelLatencyModel.CLIP_MARGIN
    assert 1e-5 / margin <= pred[0] <= 1e-5 * margin
    assert 1e-3 / margin <= pred[1] <= 1e-3 * margin
    with pytest.raises(ModelError, match="2 programs but 1 workload hashes"):
        KernelLatencyModel().fit(plain, [1e-5, 1e-5], keys[:1])


def test_node_features_follow_the_data_flow(net, kernels):
    forked = {t.hash: False for t in net.tasks}
    seconds = {t.hash: 1e-5 for t in net.tasks}
    x, adj = node_matrix(net, forked, seconds)
    assert x.shape == (len(net.steps), 6) and adj.shape == (len(net.steps),) * 2
    assert np.allclose(adj.sum(axis=1)[adj.sum(axis=1) > 0], 1.0)  # means of producers
    assert np.all(np.triu(adj) == 0)  # producers run before their consumers
    row = readout(x, adj)
    assert row.shape == (len(READOUT_NAMES),)
    assert row[0] == pytest.approx(1e-5 * len(net.steps))  # the sum baseline
    assert row[READOUT_NAMES.index("x.calls")] == len(net.steps)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 2.0), st.floats(1e-6, 2e-5), st.integers(0, 2**31 - 1))
def test_the_graph_model_learns_a_call_overhead(scale, overhead, seed):
    """Measured = scale x sum + overhead x calls: the graph model gets it, the sum does not."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((24, len(READOUT_NAMES)))
    rows[:, 0] = rng.uniform(1e-4, 1e-3, 24)
    rows[:, READOUT_NAMES.index("x.calls")] = rng.integers(5, 60, 24)
    measured = scale * rows[:, 0] + overhead * rows[:, READOUT_NAMES.index("x.calls")]
    model = GraphLatencyModel().fit(rows[:16], measured[:16])
    graph = latency_errors(model.predict(rows[16:]), measured[16:])
    plain = latency_errors(rows[16:, 0], measured[16:])
    assert graph["median_abs_pct"] <= plain["median_abs_pct"] + 1e-9
    assert graph["max_abs_pct"] < 10.0


def test_the_graph_model_with_no_evidence_is_the_sum():
    rows = np.zeros((4, len(READOUT_NAMES)))
    rows[:, 0] = [1e-4, 2e-4, 3e-4, 4e-4]
    model = GraphLatencyModel().fit(rows, rows[:, 0])
    assert np.allclose(model.predict(rows), rows[:, 0])


def test_the_graph_model_file_round_trips_and_refuses_others(tmp_path):
    rows = np.abs(np.random.default_rng(0).normal(size=(6, len(READOUT_NAMES)))) + 1e-3
    model = GraphLatencyModel().fit(rows, 2 * rows[:, 0])
    path = tmp_path / "graph.json"
    model.save(path)
    again = GraphLatencyModel.load(path)
    assert np.array_equal(again.predict(rows), model.predict(rows))
    with pytest.raises(ModelError, match="no such graph latency model file"):
        GraphLatencyModel.load(tmp_path / "missing.json")
    bad = json.loads(path.read_text())
    bad["readout"] = bad["readout"][:-1]
    with pytest.raises(ModelError, match="readout columns are not this version's"):
        GraphLatencyModel.from_json(json.dumps(bad), "old.json")
    with pytest.raises(ModelError, match="x.json: not a graph latency model"):
        GraphLatencyModel.from_json("[1, 2]", "x.json")
    with pytest.raises(ModelError, match="predict before fit"):
        GraphLatencyModel().predict(rows)
    with pytest.raises(ModelError, match=r"rows of shape \(6, 3\)"):
        model.predict(rows[:, :3])
    with pytest.raises(ModelError, match="measured latency is not a positive number"):
        GraphLatencyModel().fit(rows, np.full(6, -1.0))


def test_latency_errors_and_rank_correlation():
    err = latency_errors([1.1, 1.8, 3.0], [1.0, 2.0, 3.0])
    assert err["n"] == 3
    assert err["median_abs_pct"] == pytest.approx(10.0)
    assert err["max_abs_pct"] == pytest.approx(10.0)
    assert err["spearman"] == pytest.approx(1.0)
    assert spearman([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(np.sqrt(3) / 2)
    with pytest.raises(ModelError, match=r"\(2,\) predictions against \(1,\)"):
        latency_errors([1.0, 2.0], [1.0])
    with pytest.raises(ModelError, match="not a positive number"):
        latency_errors([1.0], [0.0])


def test_the_bench_scores_every_predictor(net):
    """The bench's scoring on made-up measurements: one row per model and predictor."""
    rng = np.random.default_rng(0)
    data = []
    for name in ("a", "b"):
        rows = np.zeros((8, len(READOUT_NAMES)))
        rows[:, 0] = rng.uniform(1e-4, 1e-3, 8)
        rows[:, 1] = 11
        measured = 1.2 * rows[:, 0] + 5e-6 * 11
        d = ModelData(name, net, rows=list(rows), measured_s=list(measured),
                      measured_sum_s=list(1.1 * rows[:, 0]))
        data.append(d)
    out = evaluate(data)
    assert [(r["model"], r["predictor"]) for r in out] == [
        (m, p) for m in ("a", "b") for p in ("sum", "sum (measured kernels)", "graph",
                                               "graph (other models)")]
    graph = next(r for r in out if r["predictor"] == "graph")
    summed = next(r for r in out if r["predictor"] == "sum")
    assert graph["median abs %"] < summed["median abs %"]


def _database_and_graph(tmp_path, net):
    """A database of made-up records of the model's tasks (nothing is timed for them) and
    a graph model file that says 1.5 x the sum."""
    from probsched.measure.runner import RunResult
    from probsched.search.database import Database
    from probsched.target import host

    db = str(tmp_path / "runs.db")
    with Database(db) as opened:
        for seed in range(2):
            for t in net.tasks:
                trace = sampled(net, seed)[t.hash]
                if trace is not None:
                    s = 1e-6 * (1 + seed)
                    opened.add_record(t.workload, trace, RunResult(True, s, s, (s,), 0.0),
                                      target=host().key)
    rows = np.zeros((3, len(READOUT_NAMES)))
    rows[:, 0] = [1e-4, 2e-4, 3e-4]
    graph = tmp_path / "graph.json"
    GraphLatencyModel().fit(rows, 1.5 * rows[:, 0]).save(graph)
    return db, graph


def test_the_prediction_from_a_database(tmp_path, net):
    from probsched.driver.run_model import predict

    db, graph = _database_and_graph(tmp_path, net)
    result = predict(net, db, graph)
    assert result["predicted_sum_ms"] > 0 and result["kernel_records"] > 0
    assert result["predicted_graph_ms"] == pytest.approx(1.5 * result["predicted_sum_ms"],
                                                         rel=1e-2)
    assert predict(net, db) | {"predict_fit_s": 0} == \
        {**result, "predicted_graph_ms": None, "predict_fit_s": 0}


def test_run_model_predict_needs_a_database(tmp_path, capsys):
    import onnx

    from probsched.driver.cli import main

    path = tmp_path / "bert.onnx"
    onnx.save(bert_layer(small=True), str(path))
    assert main(["run-model", str(path), "--predict"]) == 1
    err = capsys.readouterr().err
    assert "needs a tuning database" in err and "Traceback" not in err


@pytest.mark.slow
def test_run_model_predicts_before_it_measures(tmp_path, capsys, net):
    """``run-model --predict`` end to end: the sum and the graph model's figure, each with
    its error against the network's measured time."""
    import onnx

    from probsched.driver.cli import main

    path = tmp_path / "bert.onnx"
    onnx.save(bert_layer(small=True), str(path))
    db, graph = _database_and_graph(tmp_path, net)
    assert main(["run-model", str(path), "--db", db, "--predict", "--graph-model",
                 str(graph), "--json", "--repeats", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["correct"] and result["predicted_sum_ms"] > 0
    assert "predicted_sum_err_pct" in result and "predicted_graph_err_pct" in result
