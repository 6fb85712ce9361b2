"""``ps.tune``: find the fastest schedule of a space for a workload within a trial budget.

The loop, composed of parts given through their protocols: a search strategy proposes a batch
(never measured decisions), the builder compiles it (worker processes), the runner checks and
times each candidate, one at a time (a runner with ``run_many``, the Dask one, gets the round
at once: :mod:`.measuring`), and every result goes to the callbacks
(:mod:`.callbacks`): the database sink commits it at once (a ``kill -9`` loses nothing
measured, failures included, with their reason), the cost model learns from each round, the
strategy hears what was measured, a progress bar moves, and whatever the caller adds.

Resume. With a database that already holds records of the workload (same structural hash,
same target), those records train the model first and their best seed the population; their
decisions are never measured again. ``trials`` counts only the new trials of this run.

Losers are timed once: a candidate more than ``SLOW_FACTOR`` times slower than the best so far
gets one warm run instead of repeats (its figure is still real and checked).

Re-timing. After each round, its ``RETIME_TOP`` fastest candidates (and any further one that
beats the best confirmed median) are timed ``RETIMES`` more times by a second runner, in a
worker of its own (on a cuda target by the same runner: the device's luck is not the
process's, and a second reference would cost its preparation again); every timing is a
record (``repeat``), and a candidate's figure is the median of its timings. The best is
chosen among the candidates timed again: the luckiest of hundreds of noisy measurements no
longer decides.

Post-optimization. The last ``POST_OPTIMIZATION`` share of the trials goes to coordinate
descent from the best candidate (:mod:`.post_opt`): its decisions moved to their neighbouring
values, measured, until no neighbour is faster; then evolution again for what is left.

Small budgets. A round measures ``batch`` candidates (64), but at most a quarter of the
budget (at least 32), and the GBDT predicts (instead of random scores) from one round's worth
of records on (at most 64): so that a budget of 64 trials still has a round that learns.
With ``pretrained=`` it predicts from the first round: it fits on a pretrained set of other
workloads' records (:mod:`.pretrained`; True: the one shipped) plus the workload's own.
With ``transfer=True`` as well, the set is another target's: the model is the set's GBDT
corrected by a residual model on the workload's own records (:mod:`.transfer`).

Accounting. Each round's seconds are split into search, build, run, model fit and the rest
(:mod:`.rounds`); its summary goes to the callbacks' ``round_finished`` and to the log
(``logging.getLogger("probsched")``'s ``probsched.tune``: a row of the round table at INFO,
failures and re-timings at DEBUG; :mod:`.events`), and ``TuneResult.rounds`` keeps them.

No space (``space=None``): the generated space (MetaSchedule's CPU rules, written in
``probsched/rules/cpu.sched``). Tuning also ends early when the strategy has no unmeasured
candidate left (small spaces are exhausted quickly).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..errors import MeasureError
from ..ir.compute import Workload
from ..ir.program import Program
from ..lang.loader import generated_space
from ..lang.space import Space
from ..measure import Builder, Runner, RunResult
from ..measure.baselines import NumpyBaseline, numpy_reference
from ..measure.cuda import CudaRunner
from ..measure.cuda import unavailable as cuda_unavailable
from ..measure.oneshot import AnyBuilder, AnyRunner
from ..measure.peak import FmaPeak, fma_peak
from ..schedule import Trace
from ..target import CpuTarget, CudaTarget, Target, resolve
from .annealing import SimulatedAnnealing, check_strategy, make_search
from .callbacks import (
    DatabaseSink,
    MeasureCallback,
    ProgressBar,
    StrategyFeedback,
    UpdateCostModel,
    notify,
)
from .cost_model import CostModel
from .database import Database, TuningDatabase
from .events import TuneLog, log
from .evolutionary import EvolutionarySearch, SearchConfig
from .features import FeatureCache
from .measuring import confirmed, measure_round, retime
from .model_choice import PretrainedArg, make_cost_model
from .post_opt import WithPostOptimization
from .records import Record, succeeded
from .rounds import PhaseClock, RoundSummary, TuneStart, failure_kinds
from .strategy import Candidate, SearchStrategy

POST_OPTIMIZATION = 0.15
"""The share of trials left to coordinate descent from the best (post_opt.py)."""
RETIME_TOP = 3
RETIMES = 2
"""Each round's RETIME_TOP fastest candidates are timed RETIMES more times (another worker)."""

SLOW_FACTOR = 3.0
"""A candidate slower than this many times the best so far (twice: cold and warm) is timed by
one run: precision is wasted on a loser (measure/runner.py)."""


@dataclass(frozen=True)
class TuneResult:
    """What a tuning run found. ``records``: this run's new records, in measurement order;
    ``search_s``: the search's own time (sampling, mutation, replay, features, prediction,
    model fitting, database writes), compile and run excluded; ``rounds``: each round's
    summary; ``phases``: seconds per phase of the whole run (:mod:`.rounds`)."""

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
    reference: NumpyBaseline | None
    stats: dict
    peak: FmaPeak | None = None
    rounds: tuple[RoundSummary, ...] = ()
    phases: tuple[tuple[str, float], ...] = ()

    @property
    def reference_latency_s(self) -> float | None:
        """numpy's seconds for the same op (None: numpy has none, or it was not timed)."""
        return None if self.reference is None else self.reference.seconds

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
            share = "" if self.peak is None else (
                f" ({self.peak.share(self.best_gflops):.0%} of the machine's measured FMA "
                f"peak, {self.peak.all_cores_gflops:.0f} GFLOP/s on {self.peak.cores} cores)")
            lines.append(f"best {self.best_latency_s * 1e3:.3f} ms, "
                         f"{self.best_gflops:.2f} GFLOP/s{share}")
        ref = self.reference
        if ref is not None and ref.seconds is not None and self.best_gflops is not None:
            lines.append(f"numpy ({ref.kernel}, {ref.threads} threads) "
                         f"{ref.seconds * 1e3:.3f} ms: best is "
                         f"{ref.seconds / self.best_latency_s:.2f}x numpy")
        return "\n".join(lines)


def tune(workload: Workload, space: Space | None = None, trials: int = 256,
         db: str | TuningDatabase | None = "runs.db", seed: int = 0, progress: bool = True, *,
         target: Target | str | None = None, cost_model: str | CostModel = "gbdt",
         strategy: SearchStrategy | str | None = None, builder: AnyBuilder | None = None,
         runner: AnyRunner | None = None, retimer: AnyRunner | None = None,
         callbacks: Sequence[MeasureCallback] = (),
         runner_timeout_s: float = 10.0, builder_workers: int = 2, reference: bool = True,
         post_optimization: float = POST_OPTIMIZATION, retime_top: int = RETIME_TOP,
         retimes: int = RETIMES, pretrained: PretrainedArg = None, transfer: bool = False,
         **config) -> TuneResult:
    """Tune ``workload`` over ``space`` for ``trials`` new trials; see the module docstring.

    ``target``: what to build for (the host when None; records are kept per target). ``db``:
    a path, an open database or None (in memory). ``cost_model``: "gbdt", "random", "gnn",
    "tlp" (the last two: the ``dl`` extra, :mod:`.gnn_model`, :mod:`.tlp_model`) or a
    :class:`CostModel`; ``strategy``: "evolutionary" (None), "sa" (simulated annealing,
    :mod:`.annealing`) or a :class:`SearchStrategy`, over ``space`` (``config``:
    :class:`SearchConfig` fields, e.g. ``population=128``);
    ``builder`` / ``runner`` / ``retimer``: parts to use (not closed here; the retimer
    re-times the fastest, by default a runner of its own); ``callbacks``: more
    :class:`MeasureCallback`\\ s; ``reference``: time numpy and the machine's FMA peak for
    the summary (after tuning: not in ``wall_s``). ``post_optimization``: the share of
    trials left to coordinate descent from the best (0: none); ``retime_top`` /
    ``retimes``: how many of each round's fastest are timed again, how many times.
    ``pretrained``: the GBDT also fits on a pretrained set, from the first round (True: the
    shipped one, :mod:`.pretrained`; or a set's path), its rows weighing less as the
    workload's own records come (:mod:`.cost_model`); ``transfer``: the set is another
    target's, whose GBDT the workload's records correct instead (:mod:`.transfer`).
    """
    t_start = time.perf_counter()
    clock = PhaseClock()
    known = {f.name for f in fields(SearchConfig)}
    if set(config) - known:
        raise TypeError(f"tune: unknown options {sorted(set(config) - known)}; search "
                        f"options: {sorted(known)}")
    cfg = SearchConfig(**config)
    check_strategy(strategy)
    space = space if space is not None else generated_space()
    tgt = resolve(target)
    if isinstance(tgt, CudaTarget) and runner is None and (why := cuda_unavailable()):
        raise MeasureError(f"cannot tune for {tgt.describe()} here: {why}")
    batch_size = min(cfg.batch, max(32, trials // 4))
    # a bad set: stop now
    model = make_cost_model(cost_model, seed, batch_size, pretrained, transfer)
    database = _database(db)
    features = FeatureCache(getattr(model, "featurize", None))
    learn = UpdateCostModel(model, features, workload.structural_hash)
    old = database.records(workload, target=tgt.key)
    if old:  # resume: the model learns from the stored records first
        with clock("fit"):
            learn.learn_from(workload, old, tgt)
    if strategy is None or isinstance(strategy, str):
        with clock("search"):
            search = make_search(strategy or "evolutionary", workload, space, model,
                                 seed=seed, config=cfg, db=database, target=tgt,
                                 features=features)
            start = _stored_best(search, old)
            strategy = WithPostOptimization(search, search.maker, trials, post_optimization,
                                            search.measured_keys, start)
    sink = DatabaseSink(database, workload, target=tgt.key, space=space.name, seed=seed)
    sinks: list[MeasureCallback] = [sink, learn, StrategyFeedback(strategy), TuneLog(),
                                    *callbacks]
    notify(sinks, "started", TuneStart(
        workload.name, workload.flops, trials, tgt.key, space.name, seed,
        getattr(database, "path", type(database).__name__), len(old), batch_size))
    bar = ProgressBar(trials, workload) if progress else None
    best = min((r.latency_s for r in old if r.ok), default=math.inf)
    timings: dict[str, list[float]] = {}  # clean timings per candidate, stored ones too
    for r in old:
        if r.ok and not r.loaded:
            timings.setdefault(r.decisions, []).append(r.latency_s)
    with contextlib.ExitStack() as stack:
        if bar is not None:
            stack.callback(bar.close)
            sinks.append(bar)
        builder = builder or stack.enter_context(Builder(workers=builder_workers, target=tgt))
        if runner is None:
            runner = _runner(tgt, runner_timeout_s)
            stack.callback(runner.close)
        if not (retime_top and retimes):
            retimer = None
        elif retimer is None and isinstance(tgt, CudaTarget):
            retimer = runner  # the device's luck is not the process's; its reference is dear
        elif retimer is None:
            retimer = _runner(tgt, runner_timeout_s)  # its own process, its own luck
            stack.callback(retimer.close)
        rounds: list[RoundSummary] = []

        def slow_s() -> float | None:  # the slow bar now (measuring.py)
            return SLOW_FACTOR * best if math.isfinite(best) else None

        clock.lap()  # the rounds' seconds: from here (starting the workers is not a round)
        while len(sink.records) < trials:
            with clock("search"):
                batch = strategy.propose(min(batch_size, trials - len(sink.records)))
            if not batch:
                break
            with clock("build"):
                built = builder.build_many([c.program for c in batch])
            results: list[RunResult] = []
            answers = measure_round(runner, workload, built, slow_s, clock)
            for cand, res in zip(batch, answers, strict=True):
                if succeeded(res) and not res.loaded:  # a loaded figure never sets the bar
                    best = min(best, res.latency_s)
                    timings.setdefault(cand.key, []).append(res.latency_s)
                results.append(res)
                for s in sinks:
                    s.measured(cand, res)
            for s in sinks:
                if s is learn:
                    with clock("fit"):
                        s.round_done(batch, results)
                else:
                    s.round_done(batch, results)
            retimed = len(sink.retimings)
            if retimer is not None:
                with clock("run"):
                    retime(retimer, workload, batch, built, results, timings, sinks,
                           retime_top, retimes)
            kinds = [None if succeeded(r) else r.error_kind or "wrong" for r in results]
            rounds.append(RoundSummary(
                len(rounds) + 1, getattr(strategy, "proposing", type(strategy).__name__),
                len(batch), len(sink.records), sum(k is not None for k in kinds),
                failure_kinds(kinds), len(sink.retimings) - retimed,
                _best_so_far(timings, best, sink.records), workload.flops, *clock.lap()))
            notify(sinks, "round_finished", rounds[-1])
        if bar is not None and len(sink.records) < trials:
            bar.complete()  # the space is exhausted: the bar ends full
    stats = dict(getattr(strategy, "stats", {}))
    new = sink.records
    # the best: by the median of each candidate's timings (timed again where it was among a
    # round's fastest, in this run or a stored one), confirmed ones first, loaded ones last
    def figure(r: Record) -> tuple[bool, bool, float]:
        times = timings.get(r.decisions, [])
        return (r.loaded, len(times) < 2 and any(len(t) > 1 for t in timings.values()),
                statistics.median(times) if times else r.latency_s)

    ok_best = min((r for r in (*old, *new) if r.ok), key=figure, default=None)
    wall_s = time.perf_counter() - t_start  # the numpy reference below is not tuning
    result = TuneResult(
        workload.name, workload.flops, ok_best.trace if ok_best else None,
        figure(ok_best)[2] if ok_best else math.inf,
        ok_best.trace.replay(workload, target=tgt).program if ok_best else None,
        tuple(new), len(new), sum(not r.ok for r in new), wall_s, clock.overhead(),
        numpy_reference(workload, tgt.cores if isinstance(tgt, CpuTarget) else None)
        if reference else None, stats,
        fma_peak(tgt) if reference and isinstance(tgt, CpuTarget) else None,
        tuple(rounds), tuple(clock.total.items()))
    if database is not db and isinstance(database, Database):
        database.close()
    notify(sinks, "finished", result)
    if progress and not log.isEnabledFor(logging.INFO):  # else the log has it
        print(result.summary(), file=sys.stderr)
    return result


def _stored_best(search: EvolutionarySearch | SimulatedAnnealing, old: Sequence[Record]
                 ) -> tuple[Candidate, float] | None:
    """The stored best record's candidate (the space run with its decisions) and latency."""
    done = [r for r in old if r.ok and not r.loaded]
    if not done:
        return None
    rec = min(done, key=lambda r: r.latency_s)
    cand = search.maker.make(rec.trace.decision_map)
    return None if cand is None else (cand, rec.latency_s)


def _runner(target: Target, timeout_s: float) -> AnyRunner:
    """The runner for ``target``'s code: the GPU runner for a cuda target."""
    if isinstance(target, CudaTarget):
        return CudaRunner(timeout_s=max(timeout_s, 20.0))  # a first launch JIT-loads a module
    return Runner(timeout_s=timeout_s)


def _best_so_far(timings: dict[str, list[float]], best: float,
                 records: Sequence[Record]) -> float:
    """The best confirmed median, else the best clean timing, else the best timing taken
    under load (what the run would report now)."""
    for figure in (confirmed(timings), best):
        if math.isfinite(figure):
            return figure
    return min((r.latency_s for r in records if r.ok), default=math.inf)


def _database(db: str | os.PathLike[str] | TuningDatabase | None) -> TuningDatabase:
    if db is None:
        return Database(":memory:")
    if isinstance(db, str | os.PathLike):
        return Database(db)
    return db


__all__ = ["SLOW_FACTOR", "TuneResult", "make_cost_model", "tune"]
