"""``ps.tune``: find the fastest schedule of a space for a workload within a trial budget.

Rounds: the search strategy proposes a batch (never measured decisions); the builder compiles
it (2 worker processes); the runner checks and times each candidate, one at a time; each result
goes to the database at once (committed: a ``kill -9`` loses nothing measured, failures
included, with their reason); the cost model learns from the batch (GBDT: it refits on all
records of the workload as they grow).

Resume. With a database that already holds records of the workload (same structural hash,
same target), those records train the model first and their best seed the population; their
decisions are never measured again. ``trials`` counts only the new trials of this run.

Losers are timed once: a candidate more than ``SLOW_FACTOR`` times slower than the best so far
gets one warm run instead of repeats (its figure is still real and checked).

Small budgets. A round measures ``batch`` candidates (64), but at most a quarter of the
budget (at least 32), and the GBDT predicts (instead of random scores) from one round's worth
of records on (at most 64): so that a budget of 64 trials still has a round that learns.

No space (``space=None``): the generated space (MetaSchedule's CPU rules, written in
``probsched/rules/cpu.sched``). Tuning also ends early
when the space has no unmeasured candidate left (small spaces are exhausted quickly).
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
import time
from dataclasses import dataclass, fields

from ..ir.compute import Workload
from ..ir.program import Program
from ..lang.space import Space
from ..measure import Builder, Runner, RunResult
from ..schedule import Trace
from ..target import Target, resolve
from .cost_model import CostModel, GBDTConfig, GBDTModel, RandomModel
from .database import Database, Record
from .evolutionary import EvolutionarySearch, SearchConfig
from .features import program_features

SLOW_FACTOR = 3.0
"""A candidate slower than this many times the best so far (twice: cold and warm) is timed by
one run: precision is wasted on a loser (measure/runner.py)."""


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run found. ``records``: this run's new records, in measurement order;
    ``search_s``: the search's own time (sampling, mutation, replay, features, prediction,
    model fitting, database writes), compile and run excluded."""

    workload: str
    flops: int
    best_trace: Trace | None
    best_latency_s: float
    best_program: Program | None
    records: tuple[Record, ...]
    trials: int
    failures: int
    wall_s: float
    search_s: float
    reference_latency_s: float | None
    stats: dict

    @property
    def best_gflops(self) -> float | None:
        ok = math.isfinite(self.best_latency_s) and self.best_latency_s > 0
        return self.flops / self.best_latency_s / 1e9 if ok else None

    def summary(self) -> str:
        lines = [f"tuned {self.workload}: {self.trials} new trials ({self.failures} failed) "
                 f"in {self.wall_s:.1f} s; search overhead "
                 f"{self.search_s / max(1, self.trials) * 1e3:.1f} ms/trial"]
        if self.best_gflops is None:
            lines.append("no correct candidate")
        else:
            lines.append(f"best {self.best_latency_s * 1e3:.3f} ms, "
                         f"{self.best_gflops:.2f} GFLOP/s")
        if self.reference_latency_s is not None and self.best_gflops is not None:
            lines.append(f"numpy (2 threads) {self.reference_latency_s * 1e3:.3f} ms: best is "
                         f"{self.reference_latency_s / self.best_latency_s:.2f}x numpy")
        return "\n".join(lines)


def _model(cost_model: str | CostModel, seed: int, batch: int) -> CostModel:
    if cost_model == "gbdt":
        return GBDTModel(GBDTConfig(min_records=min(64, batch)), seed=seed)
    if cost_model == "random":
        return RandomModel(seed=seed)
    if isinstance(cost_model, str):
        from ..errors import ProbschedError

        raise ProbschedError(f"unknown cost model {cost_model!r}; known: gbdt, random")
    return cost_model


def numpy_latency_s(workload: Workload, threads: int = 2) -> float | None:
    """numpy's time for the same op, where numpy has it (by workload name: gmm, sfm, nrm)."""
    from ..bench.naive import NUMPY_OPS, numpy_seconds

    op = workload.name.upper()
    if op not in NUMPY_OPS:
        return None
    return numpy_seconds(op, workload, threads)


def tune(workload: Workload, space: Space | None = None, trials: int = 256,
         db: str | Database | None = "runs.db", seed: int = 0, progress: bool = True, *,
         cost_model: str | CostModel = "gbdt", runner_timeout_s: float = 10.0,
         builder_workers: int = 2, reference: bool = True, target: Target | str | None = None,
         **config) -> TuneResult:
    """Tune ``workload`` over ``space`` for ``trials`` new trials; see the module docstring.
    ``target``: what to build for (the host when None; records are kept per target);
    ``db``: a path, an open :class:`Database` or None (in memory); ``cost_model``: "gbdt",
    "random" or a :class:`CostModel`; ``config``: :class:`SearchConfig` fields (e.g.
    ``population=128``); ``reference``: time numpy for the summary."""
    t_start = time.perf_counter()
    known = {f.name for f in fields(SearchConfig)}
    unknown = set(config) - known
    if unknown:
        raise TypeError(f"tune: unknown options {sorted(unknown)}; search options: "
                        f"{sorted(known)}")
    cfg = SearchConfig(**config)
    if space is None:
        from ..rules import generated_space

        space = generated_space()
    database = db if isinstance(db, Database) else Database(":memory:" if db is None else db)
    tgt = resolve(target)
    target_key = tgt.key
    batch_size = min(cfg.batch, max(32, trials // 4))
    model = _model(cost_model, seed, batch_size)
    if isinstance(model, GBDTModel):  # scikit-learn's import (~1 s) overlaps the first batch
        threading.Thread(target=importlib.import_module, args=("sklearn.ensemble",),
                         daemon=True).start()
    key = workload.structural_hash
    overhead = 0.0
    t = time.perf_counter()
    old = database.records(workload, target=target_key)
    if old:
        programs = [program_features(r.trace.replay(workload, target=tgt).program)
                    for r in old]
        model.update(programs, [r.trace for r in old], [r.latency_s for r in old], key)
    search = EvolutionarySearch(workload, space, model, seed=seed, config=cfg, db=database,
                                target=tgt)
    overhead += time.perf_counter() - t
    best = min(old, key=lambda r: r.latency_s, default=None)
    new: list[Record] = []
    failures = 0
    bar = _bar(trials, progress)
    try:
        with Builder(workers=builder_workers, target=tgt) as builder, \
                Runner(timeout_s=runner_timeout_s) as runner:
            while len(new) < trials:
                batch = search.propose(min(batch_size, trials - len(new)))
                if not batch:
                    break
                built = builder.build_many([c.program for c in batch])
                lat = []
                for cand, b in zip(batch, built, strict=True):
                    if b.ok:
                        slow = SLOW_FACTOR * best.latency_s if best and best.ok else None
                        res = runner.run(b.artifact, workload, slow_s=slow)
                    else:
                        res = RunResult.failed("build", b.error or "build failed")
                    t = time.perf_counter()
                    rid = database.add_record(workload, cand.trace, res, target=target_key,
                                              space=space.name, seed=seed)
                    overhead += time.perf_counter() - t
                    rec = _as_record(rid, cand, res, target_key, space.name, seed)
                    new.append(rec)
                    lat.append(rec.latency_s)
                    failures += not rec.ok
                    if rec.ok and (best is None or rec.latency_s < best.latency_s):
                        best = rec
                    _tick(bar, workload, best, failures)
                t = time.perf_counter()
                search.measured(batch)
                model.update(search.features(batch),
                             [c.trace for c in batch], lat, key)
                overhead += time.perf_counter() - t
    finally:
        if bar is not None:
            bar.close()
    overhead += search.stats["search_s"]
    ok_best = best if best is not None and best.ok else None
    wall_s = time.perf_counter() - t_start  # the numpy reference below is not tuning
    result = TuneResult(
        workload.name, workload.flops, ok_best.trace if ok_best else None,
        ok_best.latency_s if ok_best else math.inf,
        ok_best.trace.replay(workload, target=tgt).program if ok_best else None,
        tuple(new), len(new), failures, wall_s, overhead,
        numpy_latency_s(workload) if reference else None, dict(search.stats))
    if not isinstance(db, Database):
        database.close()
    if progress:
        print(result.summary(), file=sys.stderr)
    return result


def _as_record(rid: int, cand, res: RunResult, target: str, space: str, seed: int) -> Record:
    ok = res.correct and res.error_kind is None and math.isfinite(res.latency_s)
    return Record(rid, 0, cand.trace, cand.key, target, tuple(res.runs_s),
                  res.latency_s if ok else math.inf, res.error, res.error_kind,
                  res.max_abs_err, space, seed, time.time())


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="tune", unit="trial", file=sys.stderr, dynamic_ncols=True)


def _tick(bar, workload: Workload, best: Record | None, failures: int) -> None:
    if bar is None:
        return
    gflops = (workload.flops / best.latency_s / 1e9
              if best is not None and best.ok else float("nan"))
    bar.set_postfix_str(f"best {gflops:.2f} GFLOP/s, {failures} failed", refresh=False)
    bar.update(1)


__all__ = ["TuneResult", "numpy_latency_s", "tune"]
