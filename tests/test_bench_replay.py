"""The replay bench's per-candidate figures (``probsched bench --suite replay``, part b), on
a small workload: every figure is there and plausible, and the round proposes candidates."""

from __future__ import annotations

import probsched as ps
from probsched.driver.bench.replay import candidate_costs
from probsched.search.evolutionary import SearchConfig


def test_candidate_costs_of_a_small_gmm():
    row = candidate_costs(ps.workloads.gmm(b=1, n=64, m=64, k=64), n=4, round_batch=8)
    for key in ("fresh sample ms", "mutant ms", "features ms", "search ms per trial"):
        assert row[key] is not None and row[key] > 0, key
    config = SearchConfig()
    assert config.min_population <= row["population"] <= config.population
    assert row["runs in the round"] >= row["population"] // 2


def test_candidate_costs_without_a_round():
    row = candidate_costs(ps.workloads.gmm(b=1, n=32, m=32, k=32), n=3, round_batch=None)
    assert set(row) == {"fresh sample ms", "mutant ms", "features ms"}
    assert row["fresh sample ms"] > 0


def test_a_bench_table_has_every_rows_columns():
    from probsched.driver.bench import markdown

    text = markdown({"suite": "s", "date": "d", "machine": "m",
                     "rows": [{"a": 1}, {"a": 2, "b": 3.5}]})
    assert "| a | b |" in text and "| 1 | - |" in text and "| 2 | 3.5 |" in text
