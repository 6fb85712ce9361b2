"""What happens to each measurement: callbacks of the tuning loop.

The loop (:mod:`.tuner`) measures candidates and hands every result to its callbacks, as it
comes (:meth:`MeasureCallback.measured`, :meth:`~MeasureCallback.retimed`) and per round
(:meth:`~MeasureCallback.round_done`, then :meth:`~MeasureCallback.round_finished` with the
round's summary and timings); they also hear the start and the end of the run
(:meth:`~MeasureCallback.started`, :meth:`~MeasureCallback.finished`). The ones here:
:class:`DatabaseSink` (every record committed at once, so a ``kill -9`` loses nothing
measured), :class:`UpdateCostModel` (the model learns from each round),
:class:`StrategyFeedback` (the strategy never proposes a measured candidate again) and
:class:`ProgressBar`; :mod:`.events` has the log and a JSON-lines stream. A user subclasses
:class:`MeasureCallback` (an object with ``measured``, ``round_done`` and ``retimed`` does
too; the other hooks are optional), e.g. to log or plot.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..ir.compute import Workload
from ..measure import RunResult
from .cost_model import CostModel
from .database import TuningDatabase
from .features import FeatureCache
from .records import Record, succeeded
from .strategy import Candidate, SearchStrategy

if TYPE_CHECKING:
    from .rounds import RoundSummary, TuneStart
    from .tuner import TuneResult


class MeasureCallback:
    """Told of every measurement; subclasses override what they need (both do nothing)."""

    def measured(self, candidate: Candidate, result: RunResult) -> None:
        """One candidate was measured (``result`` says how; a failure is a result too)."""

    def round_done(self, candidates: Sequence[Candidate],
                   results: Sequence[RunResult]) -> None:
        """A round's candidates were all measured (in this order)."""

    def retimed(self, candidate: Candidate, result: RunResult) -> None:
        """A candidate measured before was timed again (not a new trial)."""

    def started(self, start: TuneStart) -> None:
        """The run begins (what it will tune, for how many trials)."""

    def round_finished(self, summary: RoundSummary) -> None:
        """A round is over, its re-timings too: its summary (best so far, failures, the
        seconds of each phase)."""

    def finished(self, result: TuneResult) -> None:
        """The run is over: what it found."""


def notify(callbacks: Sequence[MeasureCallback], hook: str, what: object) -> None:
    """Call ``hook`` (``started``, ``round_finished``, ``finished``) on each callback that
    has it (a plain object may have only ``measured``, ``round_done`` and ``retimed``)."""
    for c in callbacks:
        method = getattr(c, hook, None)
        if method is not None:
            method(what)


class DatabaseSink(MeasureCallback):
    """Commits each measurement to ``db`` as it comes; ``records`` are this run's, in order."""

    def __init__(self, db: TuningDatabase, workload: Workload, *, target: str,
                 space: str | None, seed: int | None):
        self.db, self.workload = db, workload
        self.target, self.space, self.seed = target, space, seed
        self.records: list[Record] = []  # one per new trial
        self.retimings: list[Record] = []  # timings again of candidates measured before

    def measured(self, candidate: Candidate, result: RunResult) -> None:
        self.records.append(self._store(candidate, result, False))

    def retimed(self, candidate: Candidate, result: RunResult) -> None:
        self.retimings.append(self._store(candidate, result, True))

    def _store(self, candidate: Candidate, result: RunResult, repeat: bool) -> Record:
        rid = self.db.add_record(self.workload, candidate.trace, result, target=self.target,
                                 space=self.space, seed=self.seed, repeat=repeat)
        ok = succeeded(result)
        return Record(
            rid, 0, candidate.trace, candidate.key, self.target, tuple(result.runs_s),
            result.latency_s if ok else math.inf, result.error, result.error_kind,
            result.max_abs_err, self.space, self.seed, time.time(), result.contention, repeat)



class UpdateCostModel(MeasureCallback):
    """The cost model learns from each round (features from ``features``)."""

    def __init__(self, model: CostModel, features: FeatureCache, workload_key: str):
        self.model, self.features, self.key = model, features, workload_key

    def learn_from(self, workload: Workload, records: Sequence[Record], target) -> None:
        """Learn from stored records (a resumed run): their traces replayed to programs."""
        programs = [self.features.featurize(r.trace.replay(workload, target=target).program)
                    for r in records]
        self.model.update(programs, [r.trace for r in records],
                          [r.latency_s for r in records], self.key)

    def round_done(self, candidates: Sequence[Candidate],
                   results: Sequence[RunResult]) -> None:
        latencies = [r.latency_s if succeeded(r) else math.inf for r in results]
        self.model.update(self.features(candidates), [c.trace for c in candidates],
                          latencies, self.key)


class StrategyFeedback(MeasureCallback):
    """Tells the strategy which candidates were measured."""

    def __init__(self, strategy: SearchStrategy):
        self.strategy = strategy

    def round_done(self, candidates, results) -> None:
        self.strategy.measured(candidates, results)


class ProgressBar(MeasureCallback):
    """A tqdm bar (``tqdm.auto``: a widget in a Jupyter notebook, text on stderr elsewhere):
    trials done, best GFLOP/s so far, failures."""

    def __init__(self, total: int, workload: Workload):
        from tqdm.auto import tqdm

        self.workload = workload
        self.best = math.inf
        self.failures = 0
        self.bar = tqdm(total=total, desc="tune", unit="trial", file=sys.stderr,
                        dynamic_ncols=True)

    def measured(self, candidate, result: RunResult) -> None:
        if succeeded(result):
            self.best = min(self.best, result.latency_s)
        else:
            self.failures += 1
        gflops = self.workload.flops / self.best / 1e9 if math.isfinite(self.best) else math.nan
        self.bar.set_postfix_str(f"best {gflops:.2f} GFLOP/s, {self.failures} failed",
                                 refresh=False)
        self.bar.update(1)

    def complete(self) -> None:
        """The run ended before its budget (its space seen whole): the bar ends full, not
        as an interrupted one (a notebook's bar turns red at close when short of its
        total)."""
        if self.bar.total and self.bar.n < self.bar.total:
            self.bar.total = self.bar.n
            widget = getattr(self.bar, "container", None)  # tqdm.notebook's progress widget
            if widget is not None:
                widget.children[1].max = max(1, self.bar.n)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
