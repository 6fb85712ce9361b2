"""``probsched dataset``: the suite at four shapes per operator measured into a database
(resumable), exported as a pretrained set; ``tune(pretrained=...)`` and ``--pretrained``."""

import json

import numpy as np
import pytest

import probsched as ps
from probsched.driver import dataset as D
from probsched.driver.cli import main
from probsched.driver.dataset_export import cpu_description, export, rebuild
from probsched.errors import DatasetError, ProbschedError
from probsched.search import pretrained as P
from probsched.search.cost_model import program_rows
from probsched.search.database import Database
from probsched.target import host
from probsched.workloads import SUITE


def test_four_shapes_per_suite_operator_and_all_build():
    assert set(D.SHAPES) == set(SUITE)
    items = D.dataset_workloads()
    assert len(items) == 4 * len(SUITE)
    for op, _, wl in items:
        assert wl.name == SUITE[op][0].__name__ and wl.flops > 0
        assert len({str(p) for p in D.SHAPES[op]}) == 4  # four different shapes
    assert [k for _, k, _ in D.dataset_workloads(["gmm"], [1, 3])] == [1, 3]


def test_bad_options_are_user_errors():
    with pytest.raises(ProbschedError, match="unknown operators.*known: GMM"):
        D.dataset_workloads(["XYZ"])
    with pytest.raises(ProbschedError, match="0-3"):
        D.dataset_workloads(shapes=[4])
    with pytest.raises(ProbschedError, match="per-shape"):
        D.split_budget(0, 0.5)
    assert D.split_budget(10, 0.3) == (7, 3) and D.split_budget(5, 0.0) == (5, 0)


@pytest.fixture
def small_shapes(monkeypatch):
    """NRM and GMM at two small shapes each, so that measuring them takes seconds."""
    monkeypatch.setitem(D.SHAPES, "NRM", (dict(n=33, m=17), dict(n=64, m=8), dict(n=8, m=8),
                                          dict(n=16, m=16)))
    monkeypatch.setitem(D.SHAPES, "GMM", (dict(b=1, n=16, m=24, k=20),
                                          dict(b=1, n=32, m=16, k=16), dict(b=1, n=8, m=8, k=8),
                                          dict(b=1, n=16, m=16, k=16)))


def test_measure_resume_and_export(tmp_path, small_shapes):
    db = tmp_path / "ds.db"
    messages = []
    counts = D.measure(db, ops=["NRM", "GMM"], shapes=[0, 1], per_shape=6,
                       progress=messages.append)
    assert counts == {f"{op}-{k}": {"random": 3, "searched": 3}
                      for op in ("NRM", "GMM") for k in (0, 1)}
    assert any("NRM-0 n=33, m=17: 3/3 random" in m for m in messages)
    with Database(db, readonly=True) as d:
        stored = d.count()
    again = D.measure(db, ops=["NRM", "GMM"], shapes=[0, 1], per_shape=6,
                      progress=messages.append)
    assert again == counts
    with Database(db, readonly=True) as d:
        assert d.count() == stored  # nothing measured again

    npz, sidecar, summary = export(db, tmp_path / "set", command="test")
    data = P.load(npz)
    meta = json.loads(sidecar.read_text())
    assert summary["workloads"] == 4 and summary["rows"] == len(data) >= 4 * 5
    assert meta["target"]["key"] == host().key and meta["command"] == "test"
    assert {w["op"] for w in data.workloads} == {"NRM", "GMM"}
    assert [w["shape"] for w in data.workloads] == [0, 1, 0, 1]
    assert np.all((0 <= data.labels) & (data.labels <= 1))
    for k in range(4):  # normalized within each workload: its best is 1
        mine = data.labels[data.workload == k]
        assert mine.max() == pytest.approx(1.0)
    assert data.searched.sum() == summary["searched"] > 0
    assert data.rows.shape[1] == len(P.feature_names())
    # the traces beside the rows rebuild the programs: each replays to its row
    traces = P.load_traces(npz, data)
    assert traces is not None and len(traces) == len(data)
    k = int(np.argmax(data.labels))
    w = data.workloads[data.workload[k]]
    wl = SUITE[w["op"]][0](**w["params"])
    program = traces[k].replay(wl).program
    np.testing.assert_allclose(program_rows([program], [traces[k]])[0], data.rows[k], rtol=1e-6)
    assert P.load_traces(tmp_path / "elsewhere", data) is None  # a set without traces
    P.traces_path(npz).write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="not a pretrained set's traces"):
        P.load_traces(npz, data)


def test_cli_exports_a_database_and_tune_fits_on_the_set(tmp_path, small_shapes, capsys):
    db = tmp_path / "ds.db"
    assert main(["dataset", "--db", str(db), "--ops", "GMM", "--shapes", "0", "--per-shape",
                 "4", "-o", str(tmp_path / "set"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["rows"] >= 3 and out["npz"].endswith("set.npz")
    assert main(["dataset", "--db", str(db), "--export-only", "-o",
                 str(tmp_path / "again")]) == 0
    assert "rows of 1 workloads" in capsys.readouterr().out

    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)  # not in the set
    model = ps.search.model_choice.make_cost_model("gbdt", 0, 32, pretrained=str(tmp_path / "set"))
    assert model._prior is not None
    result = ps.tune(wl, trials=4, db=None, progress=False, reference=False,
                     pretrained=tmp_path / "set", population=32, init_min_fresh=8)
    assert result.trials == 4 and result.best_latency_s < float("inf")


def test_a_bad_set_stops_tune_before_measuring(tmp_path):
    _, sidecar = P.save(tmp_path / "set", P.PretrainedSet(
        np.zeros((2, len(P.feature_names())), dtype=np.float32), np.ones(2), np.ones(2),
        np.zeros(2, dtype=np.int32), np.zeros(2, dtype=bool), {"workloads": [{"op": "X"}]}))
    meta = json.loads(sidecar.read_text())
    meta["feature_version"] = "old"
    sidecar.write_text(json.dumps(meta))
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    db = tmp_path / "runs.db"
    with pytest.raises(DatasetError, match="feature version 'old'"):
        ps.tune(wl, trials=4, db=str(db), progress=False, pretrained=str(tmp_path / "set"))
    assert not db.exists()
    assert main(["tune", "examples/matmul.sched", "--trials", "4", "--db", str(db),
                 "--pretrained", str(tmp_path / "nothing")]) == 1


def test_rebuild_only_suite_workloads(tmp_path):
    with Database(tmp_path / "x.db") as db:
        for wl in (ps.workloads.c1d(**SUITE["C1D"][2]), ps.workloads.sfm(n=4, m=4)):
            db.add_workload(wl)
        mod = ps.parse("workload own(n=8):\n  input A: float32[n]\n"
                       "  B[i]: float32[n] = A[i] * 2.0\n")
        db.add_workload(mod.workload("own"))
        rows = db.workloads()
    got = [rebuild(r) for r in rows]
    assert [g[0] for g in got[:2]] == ["C1D", "SFM"] and got[1][1] == {"n": 4, "m": 4}
    assert got[2] is None


def test_cpu_description_names_the_target():
    d = cpu_description(host())
    assert d["key"] == host().key and d["vector_bits"] == host().vector_bits
