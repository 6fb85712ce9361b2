"""The tuner: search + build + run + database. Faulty candidates (crash, hang, wrong) become
failed records with their reason; a killed ``probsched tune`` resumes and loses nothing; the
CLI's ``tune --json`` and ``show``."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import probsched as ps
from probsched.measure import Builder
from probsched.search import EvolutionarySearch, RandomModel, SearchConfig
from probsched.search.database import Database
from probsched.testing import faults

SMALL = {"population": 64, "init_min_fresh": 16}

# A gmm space with many points (tiles of i, j and r), for the resume tests.
WIDE = """
workload gmm(n = 64, m = 64, k = 64):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

space wide for gmm:
    c = get_block("C")
    i, j, r = get_loops(c)
    i0, i1, i2 = split(i, sample_perfect_tile(i, n=3, max_innermost_factor=8))
    j0, j1, j2 = split(j, sample_perfect_tile(j, n=3, max_innermost_factor=16))
    r0, r1 = split(r, sample_perfect_tile(r, n=2, max_innermost_factor=8))
    reorder(i0, j0, r0, i1, j1, r1, i2, j2)
    vectorize(j2)
"""


@ps.space
def faulty(sch):
    """Tiles of the rows; each candidate is fine (0), crashes (1), hangs (2) or computes
    wrong results (3), by the annotation that probsched.testing.faults's pass reads."""
    c = sch.get_block("C")
    _, i, j, _ = sch.get_loops(c)
    io, ii = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=4))
    fault = sch.sample_categorical([0, 1, 2, 3], [0.25, 0.25, 0.25, 0.25])
    sch.annotate(io, "inject_fault", fault)


def test_faulty_candidates_are_stored_with_their_reason_and_the_best_is_correct(tmp_path):
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    db = tmp_path / "runs.db"
    with Builder(passes=faults.PASSES) as builder:
        result = ps.tune(wl, faulty, trials=12, db=str(db), progress=False,
                         runner_timeout_s=1.0, reference=False, builder=builder, **SMALL)
        assert builder.build(result.best_program).ok  # tune left the builder open
    assert result.trials == 12  # the whole space: 3 tilings x 4 fault kinds
    with Database(db) as d:
        records = d.records(wl)
    kinds = {}
    for r in records:
        fault = next(r.trace.decision(inst.address) for inst in r.trace.instructions
                     if inst.kind == "sample_categorical")
        kinds.setdefault(fault, set()).add(r.error_kind)
    assert kinds == {0: {None}, 1: {"crash"}, 2: {"timeout"}, 3: {"wrong"}}
    assert all(r.error for r in records if not r.ok)
    assert result.failures == 9
    assert math.isfinite(result.best_latency_s)
    assert "[inject_fault=0]" in str(result.best_program)  # the best is a fault-free one
    assert ps.measure(result.best_trace.replay(wl)).correct


def test_no_space_tunes_the_generated_space():
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    result = ps.tune(wl, trials=6, db=None, progress=False, reference=False, **SMALL)
    assert result.trials == 6 and result.failures == 0
    assert any(i.kind == "get_blocks" for i in result.best_trace.instructions)
    assert ps.measure(result.best_trace.replay(wl)).correct


def test_resume_counts_only_new_trials_and_never_measures_twice(tmp_path, monkeypatch):
    # On a loaded machine (the suite beside other work) every timing is flagged and nothing
    # is re-timed; this test is about counting, so no timing counts as loaded here.
    monkeypatch.setattr(sys.modules["probsched.measure.contention"], "LOADED_CORES", math.inf)
    mod = ps.parse(WIDE)
    wl, sp = mod.workload(n=32, m=32, k=32), mod.space("wide")
    db = str(tmp_path / "runs.db")
    first = ps.tune(wl, sp, trials=6, db=db, progress=False, reference=False, **SMALL)
    second = ps.tune(wl, sp, trials=6, db=db, progress=False, reference=False, seed=1,
                     **SMALL)
    assert first.trials == 6 and second.trials == 6
    with Database(db) as d:
        records = d.records(wl)
    trials = [r for r in records if not r.repeat]  # the others: re-timings of the fastest
    assert len(trials) == 12
    assert len({r.decisions for r in trials}) == 12
    assert {r.decisions for r in records if r.repeat} <= {r.decisions for r in trials}
    assert second.best_trace is not None
    best = {r.decisions for r in trials if r.trace == second.best_trace}
    assert len(best) == 1  # the reported best is one of the measured trials


def test_search_proposes_distinct_unmeasured_candidates():
    mod = ps.parse(WIDE)
    wl, sp = mod.workload(n=32, m=32, k=32), mod.space("wide")
    search = EvolutionarySearch(wl, sp, RandomModel(0), config=SearchConfig(**SMALL))
    batch = search.propose(20)
    assert len(batch) == 20 and len({c.key for c in batch}) == 20
    search.measured(batch)
    again = search.propose(20)
    assert not ({c.key for c in again} & {c.key for c in batch})
    assert search.stats["cache_hits"] > 0


def test_search_overhead_per_candidate_is_small():
    """With the default population, one round costs about the search's budget per candidate
    (the adaptive population keeps it there; the first round may overshoot, so look at the
    second)."""
    mod = ps.parse(WIDE)
    wl, sp = mod.workload(), mod.space("wide")
    search = EvolutionarySearch(wl, sp, RandomModel(0))
    search.propose(64)
    t = time.perf_counter()
    batch = search.propose(64)
    per = (time.perf_counter() - t) / len(batch)
    assert per <= SearchConfig().overhead_budget_s * 2, per  # 2x slack for a busy machine


def test_the_population_follows_the_budget_and_an_unbounded_one_is_metaschedules():
    mod = ps.parse(WIDE)
    wl, sp = mod.workload(n=32, m=32, k=32), mod.space("wide")
    free = EvolutionarySearch(wl, sp, RandomModel(0),
                              config=SearchConfig(overhead_budget_s=math.inf))
    assert free._size(64, cost_s=1.0) == 512
    tight = EvolutionarySearch(wl, sp, RandomModel(0), config=SearchConfig())
    budget = SearchConfig().overhead_budget_s
    per_member = 0.01 * (1 + 3 * SearchConfig().mutation_prob)  # 10 ms a candidate
    assert tight._size(64, cost_s=0.01) == int(budget * 64 / per_member)
    assert tight._size(64, cost_s=10.0) == SearchConfig().min_population


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "probsched", *args]


def test_cli_tune_json_and_show(tmp_path):
    sched = tmp_path / "wide.sched"
    sched.write_text(WIDE)
    db = tmp_path / "runs.db"
    params = ["--param", "n=32", "--param", "m=32", "--param", "k=32"]
    out = subprocess.run(_cli("tune", str(sched), "--trials", "4", "--db", str(db), "--json",
                              *params), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"workload", "trials", "best_latency_ms", "best_gflops",
                         "reference_latency_ms", "reference_kernel", "peak_gflops", "wall_s",
                         "best_trace"}
    assert data["workload"] == "gmm" and data["trials"] == 4 and data["best_gflops"] > 0
    assert data["reference_latency_ms"] > 0  # numpy has matmul
    assert data["peak_gflops"] > data["best_gflops"] / 2
    trace = ps.Trace.from_json(json.dumps(data["best_trace"]))
    shown = subprocess.run(_cli("show", str(sched), "--db", str(db), "--trace", *params),
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("space best for gmm:")
    assert str(trace).splitlines()[2].strip() in shown.stdout
    for flag, needle in [("--program", "program gmm"), ("--llvm", "define"),
                         ("--asm", "gmm:")]:
        res = subprocess.run(_cli("show", str(sched), "--db", str(db), flag, *params),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and needle in res.stdout, (flag, res.stderr)
    missing = subprocess.run(_cli("show", str(sched), "--db", str(db)),  # other params
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    bad = subprocess.run(_cli("tune", str(sched), "--trials", "2", "--space", "nope"),
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_kill_9_loses_nothing_and_the_same_command_resumes(tmp_path):
    sched = tmp_path / "wide.sched"
    sched.write_text(WIDE)
    db = tmp_path / "runs.db"
    cmd = _cli("tune", str(sched), "--trials", "200", "--db", str(db), "--quiet")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    before: list = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if db.exists():
                with Database(db) as d:
                    if d.count() >= 5:
                        break
        assert proc.poll() is None, "tune ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the tuner and its worker processes
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with Database(db) as d:
        before = [(r.id, r.decisions, r.latency_s, r.repeat) for r in d.records(
            ps.parse(WIDE).workload())]
    assert len(before) >= 5
    again = subprocess.run(_cli("tune", str(sched), "--trials", "3", "--db", str(db),
                                "--json"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["trials"] == 3
    with Database(db) as d:
        after = [(r.id, r.decisions, r.latency_s, r.repeat) for r in d.records(
            ps.parse(WIDE).workload())]
    assert after[:len(before)] == before
    new = [a for a in after[len(before):] if not a[3]]
    assert len(new) == 3
    trials = [a for a in after if not a[3]]
    assert len({dec for _, dec, _, _ in trials}) == len(trials)  # no trial measured twice



class _Recorder(ps.search.MeasureCallback):
    def __init__(self):
        self.each, self.rounds = [], []

    def measured(self, candidate, result):
        self.each.append((candidate.key, result.correct))

    def round_done(self, candidates, results):
        self.rounds.append(len(candidates))


class _Listed:
    """A strategy through the protocol: the given candidates, in order, then none."""

    def __init__(self, candidates):
        self.todo, self.seen = list(candidates), []

    def propose(self, n):
        out, self.todo = self.todo[:n], self.todo[n:]
        return out

    def measured(self, candidates, results):
        self.seen += [c.key for c in candidates]


def test_tune_is_composed_of_a_strategy_a_database_and_callbacks(tmp_path):
    mod = ps.parse(WIDE)
    wl, sp = mod.workload(n=32, m=32, k=32), mod.space("wide")
    search = EvolutionarySearch(wl, sp, RandomModel(0), config=SearchConfig(**SMALL))
    strategy = _Listed(search.propose(5))
    recorder = _Recorder()
    with Database(tmp_path / "runs.db") as db:
        result = ps.tune(wl, sp, trials=10, db=db, progress=False, reference=False,
                         strategy=strategy, callbacks=[recorder], retimes=0)
        stored = db.records(wl)
    assert result.trials == 5  # the strategy ran out
    assert [k for k, _ in recorder.each] == strategy.seen == [r.decisions for r in stored]
    assert sum(recorder.rounds) == 5 and all(ok for _, ok in recorder.each)
    assert [r.id for r in result.records] == [r.id for r in stored]
