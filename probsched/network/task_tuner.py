"""One task's tuning state, kept across the rounds a task scheduler gives it.

:func:`probsched.search.tuner.tune` is a whole run: it starts a builder and runners, and on
resume replays every stored record to train a fresh cost model. A network is tuned in many
short rounds per task, so this keeps per task what ``tune`` would rebuild each time: the cost
model (trained on the stored records once, on its first round), the feature cache, the
evolutionary search (its replay cache and the decisions already measured) and the timings of
each candidate; the builder and runners are shared between tasks (:mod:`.tuning`), and so
may the cost model be (labels normalized per task).
A round is ``tune``'s loop at a small budget: one batch proposed (evolution, then coordinate
descent from the best for the ``POST_OPTIMIZATION`` share of the round), built, checked and
timed, every record committed at once to the one database, the model updated, the round's
fastest timed again (their figure is the median of their timings, as in ``tune``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..lang.loader import generated_space
from ..measure import Builder, Runner, RunResult
from ..search.callbacks import DatabaseSink, MeasureCallback, StrategyFeedback, UpdateCostModel
from ..search.cost_model import CostModel
from ..search.database import TuningDatabase
from ..search.evolutionary import EvolutionarySearch
from ..search.features import FeatureCache
from ..search.model_choice import make_cost_model
from ..search.post_opt import WithPostOptimization
from ..search.records import succeeded
from ..search.strategy import Candidate
from ..search.tuner import POST_OPTIMIZATION, RETIME_TOP, RETIMES, SLOW_FACTOR
from ..target import Target
from .tasks import Task

MODEL_MIN_RECORDS = 32
"""Records a task's cost model needs before it predicts (random scores before)."""
RETIME_WITHIN = 1.25
"""A round's candidate is timed again only if within this factor of the confirmed best."""


@dataclass(frozen=True)
class RoundResult:
    """What a round did: new trials, whether the space had nothing left to propose."""

    trials: int
    exhausted: bool


class TaskTuner:
    """The search state of one task (see the module docstring)."""

    def __init__(self, task: Task, db: TuningDatabase, target: Target, seed: int = 0,
                 model: CostModel | None = None):
        self.task, self.db, self.target, self.seed = task, db, target, seed
        self._shared_model = model  # None: a model of its own, made on the first round
        self.workload = task.workload
        self.space = generated_space()
        self.timings: dict[str, list[float]] = {}  # clean timings per candidate
        self.loaded: dict[str, list[float]] = {}  # timings taken under load (a last resort)
        self.stored_trials = 0
        self._best_decisions: dict[str, object] | None = None
        decisions: dict[str, dict[str, object]] = {}
        self._stored = db.records(self.workload, target=target.key)  # the model's, on _start
        for r in self._stored:
            self.stored_trials += not r.repeat
            if r.ok:
                (self.loaded if r.loaded else self.timings).setdefault(
                    r.decisions, []).append(r.latency_s)
                decisions[r.decisions] = dict(r.trace.decision_map)
        best = self.best_key()
        self._best_decisions = None if best is None else decisions[best]
        self._search: EvolutionarySearch | None = None
        self._learn: UpdateCostModel | None = None
        self._sink: DatabaseSink | None = None
        self._best_candidate: tuple[Candidate, float] | None = None
        self._candidates: dict[str, Candidate] = {}  # measured in this run, by key

    def best_key(self) -> str | None:
        """The best candidate's decisions key: by the median of its timings, candidates
        timed again preferred, timings under load only where there is no other (as
        :func:`~probsched.search.tuner.tune` chooses); None: none correct."""
        timings = self.timings or self.loaded
        if not timings:
            return None
        confirmed = any(len(t) > 1 for t in timings.values())
        return min(timings, key=lambda k: (confirmed and len(timings[k]) < 2,
                                           statistics.median(timings[k])))

    @property
    def best(self) -> float:
        """The best candidate's figure (see :meth:`best_key`); inf: none correct."""
        k = self.best_key()
        return math.inf if k is None else statistics.median((self.timings or self.loaded)[k])

    def _confirmed(self) -> float:
        return min((statistics.median(t) for t in self.timings.values() if len(t) > 1),
                   default=math.inf)

    def _start(self) -> None:
        """The first round: the model learns from the stored records, the search starts."""
        model = self._shared_model or make_cost_model("gbdt", self.seed, MODEL_MIN_RECORDS)
        features = FeatureCache()
        self._learn = UpdateCostModel(model, features, self.workload.structural_hash)
        if self._stored:
            self._learn.learn_from(self.workload, self._stored, self.target)
        self._stored = []
        self._search = EvolutionarySearch(self.workload, self.space, model, seed=self.seed,
                                          db=self.db, target=self.target, features=features)
        self._sink = DatabaseSink(self.db, self.workload, target=self.target.key,
                                  space=self.space.name, seed=self.seed)
        if self._best_decisions is not None:
            cand = self._search.maker.make(self._best_decisions)
            if cand is not None:
                self._best_candidate = (cand, self.best)
                self._candidates[cand.key] = cand

    def round(self, trials: int, builder: Builder, runner: Runner, retimer: Runner | None,
              callbacks: Sequence[MeasureCallback] = ()) -> RoundResult:
        """Measure up to ``trials`` new candidates of this task (one batch)."""
        if self._search is None:
            self._start()
        search, learn, sink = self._search, self._learn, self._sink
        assert search is not None and learn is not None and sink is not None
        strategy = WithPostOptimization(search, search.maker, trials, POST_OPTIMIZATION,
                                        search.measured_keys, self._best_candidate)
        sinks: list[MeasureCallback] = [sink, learn, StrategyFeedback(strategy), *callbacks]
        done = 0
        while done < trials:
            batch = strategy.propose(trials - done)
            if not batch:
                return RoundResult(done, True)
            built = builder.build_many([c.program for c in batch])
            results: list[RunResult] = []
            for cand, b in zip(batch, built, strict=True):
                best = self.best
                if b.ok:
                    assert b.artifact is not None  # an ok build has its artifact
                    slow = SLOW_FACTOR * best if math.isfinite(best) else None
                    res = runner.run(b.artifact, self.workload, slow_s=slow)
                else:
                    res = RunResult.failed("build", b.error or "build failed")
                if succeeded(res):
                    self._timed(cand, res.latency_s, res.loaded)
                results.append(res)
                for s in sinks:
                    s.measured(cand, res)
            for s in sinks:
                s.round_done(batch, results)
            if retimer is not None:
                self._retime(retimer, batch, built, results, sinks)
            done += len(batch)
        return RoundResult(done, False)

    def _timed(self, cand: Candidate, latency_s: float, loaded: bool = False) -> None:
        (self.loaded if loaded else self.timings).setdefault(cand.key, []).append(latency_s)
        self._candidates[cand.key] = cand
        best = self.best_key()
        if best in self._candidates:
            self._best_candidate = (self._candidates[best], self.best)

    def _retime(self, retimer: Runner, batch: Sequence[Candidate], built,
                results: Sequence[RunResult], sinks: Sequence[MeasureCallback]) -> None:
        """The round's ``RETIME_TOP`` fastest clean candidates within ``RETIME_WITHIN`` of
        the confirmed best are timed ``RETIMES`` more times, each timing a record."""
        bar = RETIME_WITHIN * self._confirmed()
        fastest = sorted((res.latency_s, k) for k, res in enumerate(results)
                         if succeeded(res) and not res.loaded and res.latency_s < bar)
        for _, k in fastest[:RETIME_TOP]:
            artifact = built[k].artifact
            assert artifact is not None  # it was measured
            for _ in range(RETIMES):
                res = retimer.run(artifact, self.workload)
                for s in sinks:
                    s.retimed(batch[k], res)
                if succeeded(res) and not res.loaded:
                    self._timed(batch[k], res.latency_s)
