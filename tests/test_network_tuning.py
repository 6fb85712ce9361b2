"""Tuning a network: rounds on one database, resume (stored trials counted, never measured
again), the compiled network from the best records checked against onnxruntime, and the
``tune-model`` / ``run-model`` commands end to end on a three-task model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx_check import onnx, random_feeds, run_ort

import probsched as ps
from probsched.driver.cli import main
from probsched.network.tuning import round_trials
from probsched.search.database import Database
from probsched.target import host


def tiny_model():
    """x @ w1 + b1, relu, @ w2, softmax: three tasks."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def const(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["h3"]),
             helper.make_node("MatMul", ["h3", "w2"], ["h4"]),
             helper.make_node("Softmax", ["h4"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [const("w1", (16, 16)), const("b1", (16,)), const("w2", (16, 16))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def new_trials(db_path, net) -> list[int]:
    with Database(db_path, readonly=True) as db:
        return [sum(not r.repeat for r in db.records(t.workload)) for t in net.tasks]


def test_round_size_fits_the_budget():
    assert round_trials(2000, 18) == 55
    assert round_trials(20000, 18) == 64
    assert round_trials(40, 18) == 4


def test_tune_resume_and_compile_from_the_database(tmp_path):
    model = tiny_model()
    db = tmp_path / "runs.db"
    net = ps.load_onnx(model)
    assert len(net.tasks) == 3
    first = net.tune(trials=6, db=str(db), strategy="round-robin", round_size=2,
                     progress=False)
    assert first.trials == 6 and [r.trials for r in first.rows] == [2, 2, 2]
    assert new_trials(db, net) == [2, 2, 2]
    assert [n for n, _ in first.curve] == [2, 4, 6]
    # resume: a fresh import of the same model continues from the records
    again = ps.load_onnx(model)
    second = again.tune(trials=3, db=str(db), strategy="gradient", round_size=3,
                        progress=False)
    assert second.trials == 3
    assert sum(r.trials for r in second.rows) == 9 == sum(new_trials(db, again))
    with Database(db, readonly=True) as d:
        for t in again.tasks:
            recs = [r for r in d.records(t.workload) if not r.repeat]
            assert len({r.decisions for r in recs}) == len(recs)  # none measured twice
    assert second.end_to_end_s == pytest.approx(
        sum(r.weight * r.best_s for r in second.rows))
    assert "end-to-end estimate" in second.table()
    compiled = again.compile()  # the database the last tune wrote
    feeds = random_feeds(again)
    got = compiled(*feeds.values())
    want = run_ort(model, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-3, atol=1e-5)
    assert set(compiled.fallbacks) <= {t.hash for t in again.tasks}


def test_tune_refuses_bad_arguments():
    net = ps.load_onnx(tiny_model())
    with pytest.raises(ps.ProbschedError, match="unknown task scheduler"):
        net.tune(trials=4, db=None, strategy="greedy", progress=False)
    with pytest.raises(ps.ProbschedError, match="trials"):
        net.tune(trials=0, db=None, progress=False)


def test_cli_tune_model_then_run_model(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    db = str(tmp_path / "runs.db")
    assert main(["tune-model", str(path), "--trials", "6", "--db", db,
                 "--strategy", "ucb"]) == 0
    out, err = capsys.readouterr()
    assert "end-to-end estimate" in out and "matmul_add_relu" in out and "share" in out
    assert "round 1" in err  # the table as it goes
    assert main(["run-model", str(path), "--db", db, "--json", "--repeats", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["correct"] and result["tasks"] == 3
    assert result["latency_ms"] > 0 and result["onnxruntime_ms"] > 0
    assert result["onnxruntime_threads"] == 2
    assert "profile" not in result
    assert main(["run-model", str(path), "--db", db, "--json", "--repeats", "5",
                 "--profile"]) == 0
    rows = json.loads(capsys.readouterr().out)["profile"]
    assert [r["calls"] for r in rows] == [1, 1, 1]  # one row per task, each run once
    with Database(db, readonly=True) as d:
        net = ps.load_onnx(str(path))
        bests = [d.best(t.workload, 1, target=host().key) for t in net.tasks]
    assert [r["best_ms"] for r in rows] == [
        pytest.approx(1e3 * b[0].latency_s) if b else None for b in bests]
    assert all(r["in_graph_ms"] > 0 and r["alone_ms"] > 0 for r in rows)
    assert main(["run-model", str(path), "--db", db, "--repeats", "5", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "graph/alone" in out and "database bests" in out and "matmul_add_relu" in out


def test_profile_sums_repeated_tasks_and_needs_no_database():
    from onnx import TensorProto, helper, numpy_helper

    from probsched.network.profile import describe_profile, profile_network

    rng = np.random.default_rng(1)
    weights = [numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32),
                                       f"w{k}") for k in range(2)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["a"]),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("MatMul", ["b", "w1"], ["c"]),  # the same task again
             helper.make_node("Relu", ["c"], ["d"]),
             helper.make_node("Softmax", ["d"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "twice", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    net = ps.load_onnx(model)
    assert len(net.steps) == 3 and len(net.tasks) == 2
    compiled = net.compile(schedule="naive")
    rows = profile_network(compiled, list(random_feeds(net).values()), passes=3,
                           alone_repeats=2)
    assert [r.calls for r in rows] == [2, 1]
    assert {r.task for r in rows} == {t.hash for t in net.tasks}
    assert all(r.best_ms is None and r.in_graph_ms > 0 for r in rows)
    text = describe_profile(rows, top=1)
    assert "1 more tasks" in text and "database bests 0.000 ms over 0 of 2 tasks" in text


def test_cli_model_errors_print_without_traceback(tmp_path, capsys):
    assert main(["run-model", str(tmp_path / "none.onnx")]) == 1
    err = capsys.readouterr().err
    assert "no such model file" in err and "Traceback" not in err
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    assert main(["run-model", str(path), "--db", str(tmp_path / "missing.db")]) == 1
    assert "no such tuning database" in capsys.readouterr().err
    assert main(["tune-model", str(path), "--trials", "0"]) == 1
    with pytest.raises(SystemExit):
        main(["tune-model", str(path), "--trials", "4", "--strategy", "greedy"])


def test_tasks_of_one_anchor_share_a_cost_model(monkeypatch):
    import probsched.network.tuning as tuning

    made = []

    def capture(*args, **kwargs):
        made.append(tuning_make(*args, **kwargs))
        return made[-1]

    tuning_make = tuning.make_cost_model
    monkeypatch.setattr(tuning, "make_cost_model", capture)
    net = ps.load_onnx(tiny_model())
    net.tune(trials=6, db=None, strategy="round-robin", round_size=2, progress=False)
    assert [t.anchor for t in net.tasks] == ["matmul", "matmul", "softmax"]
    assert len(made) == 2  # one model for the two matmuls, one for the softmax
    assert len(set(made[0]._keys)) == 2 and len(set(made[1]._keys)) == 1
    net.tune(trials=3, db=None, round_size=1, progress=False, shared_model=False)
    assert len(made) == 2  # each task made its own
