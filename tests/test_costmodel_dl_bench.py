"""The neural rows of the costmodel bench (driver/bench/costmodel_dl.py): the shipped set
with traces loads and its traces rebuild its rows; without PyTorch the rows say why."""

import numpy as np
import pytest

from probsched.driver.bench import costmodel_dl
from probsched.search import pretrained as P
from probsched.search.cost_model import program_rows
from probsched.workloads import SUITE


def test_the_traced_set_ships_and_its_traces_rebuild_its_rows():
    path = P.shipped_path(P.TRACED)
    data = P.load(path)
    traces = P.load_traces(path, data)
    assert traces is not None and len(traces) == len(data) >= 1000
    assert len(set(data.ops())) == 7
    for k in np.random.default_rng(0).choice(len(data), 3, replace=False):
        w = data.workloads[data.workload[k]]
        program = traces[k].replay(SUITE[w["op"]][0](**w["params"])).program
        np.testing.assert_allclose(program_rows([program], [traces[k]])[0], data.rows[k],
                                   rtol=1e-5, atol=1e-5)


def test_without_torch_the_rows_say_why(monkeypatch):
    monkeypatch.setattr(costmodel_dl, "torch_missing", lambda: "PyTorch is not installed")
    rows, summary = costmodel_dl.rows_and_summary(lambda msg: None)
    assert rows == [] and "the dl extra" in summary["GNN, TLP"]


@pytest.mark.slow
def test_held_out_rows_on_two_operators():
    pytest.importorskip("torch", reason="the neural cost models need PyTorch (the dl extra)")
    ts = costmodel_dl.load_traced()
    assert ts is not None
    keep = np.isin(ts.data.ops(), ["NRM", "SFM"])
    sub = costmodel_dl.TracedSet(ts.data.select(keep),
                                 [t for t, k in zip(ts.traces, keep, strict=True) if k],
                                 [p for p, k in zip(ts.programs, keep, strict=True) if k])
    rows = costmodel_dl.held_out_neural(sub)
    assert {r["model"] for r in rows} == {"GBDT", "GNN", "TLP", "random"}
    assert all(0 <= r["pairwise_acc"] <= 1 for r in rows)
