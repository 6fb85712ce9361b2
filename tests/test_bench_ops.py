"""The operator-suite benchmark on a restricted set, with a few trials: its structure and that
the figures are positive and the tuned kernels correct (no timing is asserted)."""

from __future__ import annotations

import pytest

from probsched.driver.bench import markdown
from probsched.driver.bench.ops import BARS, operators, ops_bench
from probsched.errors import ProbschedError


def test_operators_are_the_suite_plus_sfm_256_and_the_resnet_layer():
    ops = operators()
    assert list(ops) == ["GMM", "C1D", "C2D", "C2D-56", "DEP", "NRM", "SFM", "SFM-256", "CBR",
                         "CBR-56"]
    assert set(ops) == set(BARS)
    assert dict(ops["SFM-256"].params) == {"n": 256, "m": 256}
    assert dict(ops["C2D-56"].params)["ci"] == 64 and dict(ops["CBR-56"].params)["h"] == 56


def test_ops_bench_on_nrm_and_sfm_256():
    messages = []
    result = ops_bench(trials=3, ops=["NRM", "SFM-256"], progress=messages.append)
    rows = {r["op"]: r for r in result["rows"]}
    assert list(rows) == ["NRM", "SFM-256"]
    for row in rows.values():
        assert row["correct"] is True
        assert 0 < row["trials"] <= 3 and 0 <= row["failed"] < row["trials"]
        for col in (
            "tuned GFLOP/s",
            "tune s",
            "naive GFLOP/s, LLVM loop heuristics",
            "numpy GFLOP/s",
            "tuned / G",
            "tuned / numpy",
            "naive GFLOP/s",
            "tuned / naive",
            "tuned / naive, heuristics",
        ):
            assert row[col] > 0, col
        assert row["bar"].endswith("numpy") and isinstance(row["met"], bool)
        assert isinstance(row[">= 10x naive"], bool)
    summary = result["summary"]
    assert summary["G: numpy GMM-1024 GFLOP/s, every core (median of the runs)"] > 0
    assert "openblas" in summary[
        "numpy's BLAS kernel (started without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE)"].lower()
    assert all(r["% of FMA peak"] is None or 0 < r["% of FMA peak"] for r in rows.values())
    assert len(summary["G, each run"].split(", ")) == 2  # first and last (no GMM here)
    assert any("SFM-256" in m for m in messages)
    assert "| NRM |" in markdown({"suite": "ops", "date": "-", "machine": "-", **result})


def test_unknown_op_is_an_error():
    with pytest.raises(ProbschedError, match="unknown ops"):
        ops_bench(trials=1, ops=["XYZ"])
