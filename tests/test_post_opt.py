"""Post-optimization and re-timing: coordinate descent walks a candidate's decisions to a
better neighbour until none is better; the tuner leaves it the last share of the trials; each
round's fastest are timed again and the best is their median."""

from __future__ import annotations

import math
import sys

import numpy as np

import probsched as ps
from probsched.measure import RunResult
from probsched.search.candidates import CandidateMaker
from probsched.search.mutators import Choice
from probsched.search.post_opt import CoordinateDescent, neighbour_values

SPACE = """
workload gmm(n = 64, m = 64, k = 64):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

space tiles for gmm:
    c = get_block("C")
    i, j, r = get_loops(c)
    i0, i1 = split(i, sample_perfect_tile(i, n=2, max_innermost_factor=64))
    j0, j1 = split(j, sample_perfect_tile(j, n=2, max_innermost_factor=64))
    u = sample_categorical([0, 1, 2, 3], [0.25, 0.25, 0.25, 0.25])
"""


def test_neighbours_of_each_kind_of_choice():
    cat = Choice("#1", "sample_categorical", (("candidates", (0, 1, 2)),), 0)
    assert list(neighbour_values(cat)) == [1]
    loc = Choice("#2", "sample_compute_location", (), -2)
    assert list(neighbour_values(loc)) == [-1]
    tile = Choice("#0", "sample_perfect_tile", (("max_innermost_factor", 4),), (2, 4))
    assert list(neighbour_values(tile)) == [(4, 2)]  # (1, 8) would pass the bound


def _latency(cand) -> float:
    """A made-up landscape: best at i tiles (8, 8), j tiles (4, 16), categorical index 2."""
    d = dict(cand.decisions)
    ti, tj, u = d["<string>:10:23"], d["<string>:11:23"], d["<string>:12:9"]
    return (abs(math.log2(ti[1] / 8)) + abs(math.log2(tj[1] / 16)) + abs(u - 2) + 1) * 1e-3


def _far_start() -> tuple[CandidateMaker, object]:
    """A candidate maker of SPACE and a start far from the landscape's minimum."""
    mod = ps.parse(SPACE)
    maker = CandidateMaker(mod.workload(), mod.space(), None, np.random.default_rng(0))
    start = maker.make({"<string>:10:23": (64, 1), "<string>:11:23": (64, 1),
                        "<string>:12:9": 0})
    assert start is not None
    return maker, start


def test_coordinate_descent_walks_to_the_best_neighbourhood():
    maker, start = _far_start()
    measured: set[str] = {start.key}
    cd = CoordinateDescent(maker, start, _latency(start), measured)
    for _ in range(50):
        batch = cd.propose(8)
        if not batch:
            break
        cd.measured(batch, [RunResult(True, _latency(c), _latency(c), (_latency(c),))
                            for c in batch])
    assert cd.converged and cd.steps >= 5
    assert math.isclose(cd.current_s, 1e-3)  # the landscape's minimum
    assert not cd.propose(8)


def test_descent_measures_the_models_favourite_neighbours_first():
    maker, start = _far_start()
    plain = CoordinateDescent(maker, start, _latency(start), {start.key}).propose(64)
    ranked = CoordinateDescent(maker, start, _latency(start), {start.key},
                               score=lambda cands: [-_latency(c) for c in cands]).propose(64)
    assert {c.key for c in ranked} == {c.key for c in plain}  # the same neighbours
    assert [_latency(c) for c in ranked] == sorted(_latency(c) for c in plain)


def test_tune_post_optimizes_and_reports_a_median_of_retimings(tmp_path, monkeypatch):
    # Loaded timings are never re-timed; here none counts as loaded (the suite may run beside
    # other work).
    monkeypatch.setattr(sys.modules["probsched.measure.contention"], "LOADED_CORES", math.inf)
    mod = ps.parse(SPACE)
    wl, sp = mod.workload(), mod.space()
    db = tmp_path / "runs.db"
    res = ps.tune(wl, sp, trials=24, db=str(db), progress=False, reference=False,
                  population=32, init_min_fresh=8, post_optimization=0.25)
    assert res.trials == 24
    assert "post_optimization_steps" in res.stats
    with ps.search.database.Database(db) as d:
        records = d.records(wl)
        best = d.best(wl)[0]
    repeats = [r for r in records if r.repeat]
    assert repeats and len(records) == 24 + len(repeats)
    timed = [r.latency_s for r in records if r.decisions == best.decisions and r.ok]
    assert len(timed) >= 2  # the best was timed again
    assert res.best_latency_s in timed or math.isclose(res.best_latency_s,
                                                       float(np.median(timed)))
