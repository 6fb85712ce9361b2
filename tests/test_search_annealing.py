"""Simulated annealing (AutoTVM's explorer, ``strategy="sa"``): the temperature schedule and
acceptance rule, chains that stay valid programs, nothing measured proposed again, early stop,
and a tune with it through ``ps.tune`` and ``probsched tune --strategy sa``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.driver.cli import main
from probsched.errors import ProbschedError
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.ir.rounding import error_bounds, tolerance
from probsched.rules import generated_space
from probsched.search import RandomModel
from probsched.search.annealing import (
    AnnealingConfig,
    SimulatedAnnealing,
    accept,
    make_search,
    temperatures,
)
from probsched.search.database import Database
from probsched.search.evolutionary import SearchConfig
from probsched.workloads import SUITE

MATMUL = str(Path(__file__).resolve().parent.parent / "examples" / "matmul.sched")
FAST = AnnealingConfig(parallel_size=8, n_iter=6, overhead_budget_s=math.inf, plan_size=8)


def small(name: str):
    builder, _, shape = SUITE[name]
    return builder(**shape)


@given(n=st.integers(2, 600), start=st.floats(0.1, 10), end=st.floats(0, 0.1))
def test_the_temperature_falls_linearly_from_start_to_end(n, start, end):
    t = temperatures(n, start, end)
    assert len(t) == n and t[0] == pytest.approx(start) and t[-1] == pytest.approx(end)
    assert np.allclose(np.diff(t), (end - start) / (n - 1))


def test_autotvm_defaults():
    c = AnnealingConfig()
    assert (c.plan_size, c.n_iter, c.temperature, c.parallel_size, c.early_stop) == (
        64, 500, (1.0, 0.0), 128, 50)
    assert len(temperatures(1)) == 1 and len(temperatures(0)) == 0


@given(old=st.floats(-5, 5), delta=st.floats(0, 5), t=st.floats(0, 3))
def test_a_move_that_scores_no_worse_is_always_accepted(old, delta, t):
    rng = np.random.default_rng(0)
    assert accept(np.array([old]), np.array([old + delta]), t, rng).all()


def test_a_worse_move_is_accepted_with_probability_exp_delta_over_t():
    rng = np.random.default_rng(1)
    old, new = np.zeros(20_000), np.full(20_000, -0.5)
    assert accept(old, new, 1.0, rng).mean() == pytest.approx(math.exp(-0.5), abs=0.02)
    assert accept(old, new, 0.25, rng).mean() == pytest.approx(math.exp(-2.0), abs=0.01)
    assert not accept(old, new, 0.0, rng).any()  # at temperature 0: improvements only


@pytest.mark.parametrize("name", ["GMM", "C1D", "NRM"])
def test_chains_stay_valid_programs(name):
    wl = small(name)
    sa = SimulatedAnnealing(wl, generated_space(), RandomModel(seed=2), seed=2, config=FAST)
    proposed = sa.propose(6) + sa.propose(6)
    assert proposed and all(p.key for p in sa.points)
    for cand in proposed:  # every proposal replays to its own program
        assert str(cand.trace.replay(wl).program) == str(cand.program)
    inputs = random_inputs(wl)
    refs = reference(wl, *inputs)
    tols = [tolerance(r, b, s.dtype)
            for r, b, s in zip(refs, error_bounds(wl, *inputs), wl.outputs, strict=True)]
    for cand in proposed[:3]:
        sch = cand.trace.replay(wl)
        ok, _, msg = check_outputs(ps.compile(sch)(*inputs), refs, tolerances=tols)
        assert ok, msg


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_nothing_measured_is_proposed_again(seed):
    wl = small("GMM")
    sa = SimulatedAnnealing(wl, generated_space(), RandomModel(seed=seed), seed=seed,
                            config=FAST)
    seen: set[str] = set()
    for _ in range(3):
        batch = sa.propose(5)
        keys = [c.key for c in batch]
        assert len(set(keys)) == len(keys) and not set(keys) & seen
        seen |= set(keys)
        sa.measured(batch)


class Constant:
    """A cost model that scores everything alike."""

    def update(self, *args) -> None:
        pass

    def predict(self, programs, traces):
        return np.zeros(len(programs))


def test_early_stop_after_iterations_without_a_change_of_the_heap():
    wl = small("GMM")
    cfg = AnnealingConfig(parallel_size=4, n_iter=400, early_stop=5, plan_size=4,
                          overhead_budget_s=math.inf)
    sa = SimulatedAnnealing(wl, generated_space(), Constant(), seed=0, config=cfg)
    sa.propose(2)  # the heap fills with the first points; scores alike never replace them
    assert sa.stats["early_stops"] == 1
    assert len(sa.last_temperatures) == cfg.early_stop + 1


def test_the_budget_plans_fewer_iterations_and_chains():
    wl = small("GMM")
    cfg = AnnealingConfig(overhead_budget_s=1e-4, min_chains=4, min_iters=2)
    sa = SimulatedAnnealing(wl, generated_space(), RandomModel(), seed=0, config=cfg)
    assert sa.propose(3)
    assert len(sa.points) == 4 and len(sa.last_temperatures) == 2
    assert sa.last_temperatures[0] == 1.0 and sa.last_temperatures[-1] == 0.0


def test_a_tune_with_sa_records_in_the_database(tmp_path):
    wl = ps.workloads.gmm(b=1, n=16, m=24, k=20)
    db = tmp_path / "runs.db"
    result = ps.tune(wl, trials=10, db=str(db), progress=False, reference=False,
                     strategy="sa", cost_model="random", retimes=0)
    assert result.trials == 10 and result.best_trace is not None
    assert result.rounds[0].strategy == "annealing"
    with Database(db) as d:
        recs = d.records(wl)
        assert len(recs) == 10 and len({r.decisions for r in recs}) == 10
    again = ps.tune(wl, trials=4, db=str(db), progress=False, reference=False,
                    strategy="sa", cost_model="random", retimes=0)  # resumed: none again
    with Database(db) as d:
        assert len({r.decisions for r in d.records(wl)}) == 10 + again.trials


def test_an_instance_is_a_strategy_too():
    wl = ps.workloads.gmm(b=1, n=16, m=24, k=20)
    sa = SimulatedAnnealing(wl, generated_space(), RandomModel(), config=FAST)
    result = ps.tune(wl, generated_space(), trials=4, db=None, progress=False,
                     reference=False, strategy=sa, retimes=0)
    assert result.trials == 4 and sa.stats["rounds"] >= 1


def test_a_bad_strategy_name_is_a_probsched_error(tmp_path):
    wl = ps.workloads.gmm(b=1, n=16, m=24, k=20)
    with pytest.raises(ProbschedError, match="unknown search strategy 'anneal'; known: "
                       "evolutionary, sa"):
        ps.tune(wl, trials=4, db=str(tmp_path / "x.db"), progress=False, strategy="anneal")
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened
    with pytest.raises(ProbschedError, match="unknown search strategy"):
        make_search("anneal", wl, generated_space(), RandomModel(), seed=0,
                    config=SearchConfig(), db=None, target=None, features=None)


def test_cli_strategy_flag(tmp_path, capsys):
    db = tmp_path / "runs.db"
    params = ["--param", "n=32", "--param", "m=32", "--param", "k=16"]
    assert main(["tune", MATMUL, "--trials", "3", "--db", str(db), "--quiet",
                 "--strategy", "sa", *params]) == 0
    with Database(db) as d:
        rows = d.workloads()
        assert len(rows) == 1 and len({r.decisions for r in d.records(rows[0].structural_hash)
                                       if not r.repeat}) == 3
    with pytest.raises(SystemExit) as exc:
        main(["tune", MATMUL, "--trials", "3", "--db", str(db), "--strategy", "bogus"])
    assert exc.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_the_bench_suite_is_registered(monkeypatch):
    from probsched.driver import bench
    from probsched.driver.bench import annealing as sa_bench

    calls = []
    monkeypatch.setattr(sa_bench, "annealing_bench",
                        lambda trials, progress=None: calls.append(trials) or {"rows": []})
    assert bench.run_suite("sa")["suite"] == "sa" and calls == [64]
