"""``net.tune(...)``: a network's tasks tuned in rounds, a task scheduler (:mod:`.scheduler`)
choosing which task gets each round, every record in one database.

Each step gives one task a round of trials (:class:`~.task_tuner.TaskTuner`, its search state
kept between its rounds; one builder shared by all). A runner keeps the inputs and reference
of only ``CACHED_WORKLOADS`` workloads, and preparing them again costs seconds for a large
convolution, so tasks share runners in groups of that many (task k runs in runner
``k // CACHED_WORKLOADS``, started on first use), which also time the round's fastest
again. Rounds are Ansor's 64 trials, smaller where the budget is small
(``trials // (2 * tasks)``, at least 4), so that every task gets its warm-up round and the
scheduler still has rounds to give. Resume: a task with records in the database starts from
them (its best, its trials, its model trained on them, their decisions never measured
again); ``trials`` counts only this run's new trials.
The end-to-end estimate is the sum over tasks of weight x best latency; the per-task table
(:meth:`NetworkTuneResult.table`, MetaSchedule's task table) says each task's share of it.
The database keeps a note of the model (:func:`model_note`: its name and tasks, each with its
weight and workload hash), so that ``probsched report`` groups the tasks under the model.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from ..errors import ModelError
from ..measure import Builder, Runner
from ..measure.runner import CACHED_WORKLOADS
from ..search.callbacks import MeasureCallback
from ..search.cost_model import CostModel
from ..search.database import Database, TuningDatabase
from ..search.model_choice import make_cost_model
from ..target import CpuTarget, Target, resolve
from .scheduler import TaskStats, end_to_end, make_scheduler
from .task_tuner import MODEL_MIN_RECORDS, TaskTuner

if TYPE_CHECKING:
    from .network import Network

ROUND_TRIALS = 64
MIN_ROUND_TRIALS = 4
FAILED_ROUNDS_DEAD = 2
"""A task with this many rounds and no correct candidate is given up on."""


@dataclass(frozen=True)
class TaskRow:
    """One task of the table: trials in all (stored ones included), best latency (inf:
    none correct), its weighted share of the end-to-end estimate."""

    index: int
    name: str
    hash: str
    weight: int
    flops: int
    trials: int
    best_s: float
    share: float

    @property
    def gflops(self) -> float | None:
        return self.flops / self.best_s / 1e9 if 0 < self.best_s < math.inf else None


@dataclass(frozen=True)
class NetworkTuneResult:
    """What tuning a network did: the task table, the end-to-end estimate, this run's new
    trials and wall time, and the curve (new trials so far, estimate after each round)."""

    strategy: str
    rows: tuple[TaskRow, ...]
    end_to_end_s: float
    trials: int
    wall_s: float
    curve: tuple[tuple[int, float], ...]

    def table(self) -> str:
        """MetaSchedule-style: one line per task, then the end-to-end estimate."""
        return task_table(self.rows, self.end_to_end_s)

    def to_json(self) -> dict:
        """Plain JSON values (inf as None)."""
        def ms(s: float) -> float | None:
            return s * 1e3 if math.isfinite(s) else None

        return {
            "strategy": self.strategy, "trials": self.trials, "wall_s": self.wall_s,
            "end_to_end_ms": ms(self.end_to_end_s),
            "tasks": [{"task": r.index, "name": r.name, "hash": r.hash, "weight": r.weight,
                       "trials": r.trials, "best_latency_ms": ms(r.best_s),
                       "gflops": r.gflops, "share": r.share} for r in self.rows],
            "curve": [[n, ms(e)] for n, e in self.curve],
        }


def task_table(rows: Sequence[TaskRow], end_to_end_s: float) -> str:
    """The per-task table as text."""
    lines = [f"{'ID':>3} | {'name':<28} | {'weight':>6} | {'trials':>6} | {'best ms':>9} | "
             f"{'GFLOP/s':>8} | {'share':>6}",
             "-" * 86]
    for r in rows:
        best = f"{r.best_s * 1e3:9.4f}" if math.isfinite(r.best_s) else f"{'-':>9}"
        gf = f"{r.gflops:8.2f}" if r.gflops is not None else f"{'-':>8}"
        share = f"{r.share:6.1%}" if math.isfinite(end_to_end_s) else f"{'-':>6}"
        lines.append(f"{r.index:>3} | {r.name[:28]:<28} | {r.weight:>6} | {r.trials:>6} | "
                     f"{best} | {gf} | {share}")
    total = f"{end_to_end_s * 1e3:.3f} ms" if math.isfinite(end_to_end_s) else \
        "- (a task has no correct candidate yet)"
    lines.append(f"end-to-end estimate (sum of weight x best latency): {total}")
    return "\n".join(lines)


MODEL_NOTE = "model "
"""The prefix of a model's note in a tuning database (``Database.put_note``)."""


def model_note(net: Network, target: Target, strategy: str) -> tuple[str, dict]:
    """The key and value of the note kept of a model tuned into a database: the model's
    name, its layout, the target, the task scheduler, and each task's name, weight, FLOPs
    and workload hash (its records are that workload's). The key holds a digest of the
    tasks, so two models of one name (or one model in both layouts) keep a note each."""
    digest = hashlib.sha1(" ".join(t.hash for t in net.tasks).encode()).hexdigest()[:12]
    return f"{MODEL_NOTE}{net.name} {digest} {target.key}", {
        "model": net.name, "layout": net.layout, "target": target.key, "strategy": strategy,
        "tasks": [{"index": k, "name": t.name, "hash": t.hash, "weight": t.weight,
                   "flops": t.flops} for k, t in enumerate(net.tasks)]}


def round_trials(trials: int, tasks: int) -> int:
    """Trials per round for a budget of ``trials`` over ``tasks`` tasks."""
    return max(MIN_ROUND_TRIALS, min(ROUND_TRIALS, trials // max(1, 2 * tasks)))


def _rows(net: Network, stats: Sequence[TaskStats]) -> tuple[tuple[TaskRow, ...], float]:
    total = end_to_end(stats)
    rows = tuple(
        TaskRow(k, t.name, t.hash, t.weight, t.flops, s.trials, s.best,
                t.weight * s.best / total if math.isfinite(total) and total > 0 else math.nan)
        for k, (t, s) in enumerate(zip(net.tasks, stats, strict=True)))
    return rows, total


def tune_network(net: Network, trials: int = 2000, db: str | os.PathLike[str] |
                 TuningDatabase | None = "runs.db", strategy: str = "gradient", seed: int = 0,
                 progress: bool = True, *, target: Target | str | None = None,
                 round_size: int | None = None, callbacks: Sequence[MeasureCallback] = (),
                 out: TextIO | None = None, shared_model: bool = True) -> NetworkTuneResult:
    """Tune ``net``'s tasks for ``trials`` new trials in all (see the module docstring).

    ``strategy``: "gradient", "round-robin" or "ucb"; ``db``: a path, an open database or
    None (in memory); ``progress``: print the task table after each round (to ``out``,
    standard error by default); ``round_size``: trials per round (default: see
    :func:`round_trials`); ``callbacks``: more :class:`MeasureCallback`\\ s, told of every
    task's measurements; ``shared_model``: the tasks of one anchor kind (every convolution,
    every matmul) share a cost model learning from all their records (labels normalized per
    task, as Ansor's one model is), so that a task's first round is ranked by what the others
    taught it; False: a model per task. (One model for all kinds steered BERT's softmax, the
    only task of its kind, to 3x slower kernels than its own model found.)
    """
    t0 = time.perf_counter()
    if trials < 1:
        raise ModelError(f"trials must be >= 1, got {trials}")
    scheduler = make_scheduler(strategy, seed)
    tgt = resolve(target)
    if not isinstance(tgt, CpuTarget):
        raise ModelError(f"networks are tuned for CPU targets only, not {tgt.describe()}")
    database: TuningDatabase = Database(":memory:" if db is None else db) \
        if db is None or isinstance(db, str | os.PathLike) else db
    size = round_size or round_trials(trials, len(net.tasks))
    put_note = getattr(database, "put_note", None)
    if put_note is not None:  # for the report: which workloads are this model's tasks
        put_note(*model_note(net, tgt, strategy))
    models: dict[str, CostModel] = {  # by anchor kind
        a: make_cost_model("gbdt", seed, MODEL_MIN_RECORDS)
        for a in dict.fromkeys(t.anchor for t in net.tasks)} if shared_model else {}
    tuners = [TaskTuner(t, database, tgt, seed, models.get(t.anchor)) for t in net.tasks]
    stats = [TaskStats(t.weight, t.flops, t.name,
                       [tt.best] if tt.stored_trials else [], tt.stored_trials)
             for t, tt in zip(net.tasks, tuners, strict=True)]
    no_correct = [0] * len(stats)
    curve: list[tuple[int, float]] = []
    stream = out or sys.stderr
    done = 0
    runners: dict[int, Runner] = {}
    try:
        with Builder(workers=2, target=tgt) as builder:
            while done < trials:
                k = scheduler.choose(stats)
                if k is None:
                    break  # every task's space is exhausted
                runner = runners.setdefault(k // CACHED_WORKLOADS, Runner())
                r = tuners[k].round(min(size, trials - done), builder, runner, runner,
                                    callbacks)
                s = stats[k]
                s.trials += r.trials
                s.history.append(tuners[k].best)
                no_correct[k] = 0 if math.isfinite(s.best) else no_correct[k] + 1
                s.dead = (r.exhausted and r.trials == 0) or no_correct[k] >= FAILED_ROUNDS_DEAD
                scheduler.observe(k, stats)
                done += r.trials
                curve.append((done, end_to_end(stats)))
                if progress:
                    rows, total = _rows(net, stats)
                    print(f"[{strategy}] round {len(curve)}: task {k} ({net.tasks[k].name}), "
                          f"{done}/{trials} trials", file=stream)
                    print(task_table(rows, total), file=stream, flush=True)
    finally:
        for runner in runners.values():
            runner.close()
        if database is not db and isinstance(database, Database):
            database.close()
    rows, total = _rows(net, stats)
    return NetworkTuneResult(strategy, rows, total, done, time.perf_counter() - t0,
                             tuple(curve))
