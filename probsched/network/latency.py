"""A network's end-to-end latency for a schedule assignment, predicted before measuring it.

An *assignment* gives each task of a :class:`~probsched.network.network.Network` one
schedule: a :class:`~probsched.schedule.trace.Trace` of its workload, or None for the plain
lowering (the mapping is keyed by task hash). :func:`compile_assignment` builds the network
from one, so that the prediction can be checked against the measured latency.

The prediction has two stages, after the GCN latency predictor's seed:

1. :class:`KernelLatencyModel`, each kernel's absolute latency: gradient-boosted regression
   of log(seconds) on the kernel's program row (the cost model's per-store features summed,
   maxed and of the heaviest store: :func:`probsched.search.cost_model.program_row`),
   trained on measured records of the network's tasks (:meth:`KernelLatencyModel.
   from_database`, or any (program, seconds) pairs). The tuner's GBDT ranks normalized
   throughput within a workload; a latency across workloads needs the absolute scale.
2. The sum baseline, over the network's kernel calls, of the predicted kernel latency
   (= over tasks, weight x predicted latency), and the graph model
   (:mod:`.latency_graph`) over the network's step graph, which learns from measured
   networks what sums miss (each call's overhead, thread fork-joins, data moved between
   kernels, the kernel model's bias inside a network).

:class:`LatencyPredictor` holds both; ``net.predict_latency(assignment, predictor)`` is the
same call. :func:`latency_errors` is how a prediction is scored against measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..codegen import Kernel, compile_program
from ..errors import ModelError, ProbschedError
from ..ir.program import Program, lower
from ..schedule.trace import Trace
from ..search.cost_model import program_row
from ..search.database import TuningDatabase
from ..search.features import program_features
from ..target import host
from .compiled import CompiledNetwork
from .latency_graph import GraphLatencyModel, forks, step_features
from .tasks import Task

if TYPE_CHECKING:
    from .network import Network

Assignment = Mapping[str, Trace | None]
"""Task hash -> the task's schedule (None: the plain lowering)."""

MIN_KERNEL_RECORDS = 2


def assignment_programs_checked(net: Network, assignment: Assignment) -> None:
    """Refuse an assignment that names a task the network lacks or leaves one out."""
    hashes = [t.hash for t in net.tasks]
    unknown = sorted(set(assignment) - set(hashes))
    if unknown:
        raise ModelError(f"assignment for {net.name}: no task with hash "
                         f"{', '.join(unknown)} (see net.task_table())")
    missing = [t for t in net.tasks if t.hash not in assignment]
    if missing:
        names = ", ".join(f"{t.name} ({t.hash})" for t in missing)
        raise ModelError(f"assignment for {net.name}: no schedule for task(s) {names} "
                         "(give None for the plain lowering)")


def assignment_programs(net: Network, assignment: Assignment) -> dict[str, Program]:
    """Each task's scheduled program under ``assignment`` (every task must be named)."""
    assignment_programs_checked(net, assignment)
    return {t.hash: _task_program(net, t, assignment[t.hash]) for t in net.tasks}


def _task_program(net: Network, task: Task, trace: Trace | None) -> Program:
    """One task's program: its trace replayed (None: the plain lowering)."""
    if trace is None:
        return lower(task.workload)
    try:
        return trace.replay(task.workload, target=host()).program
    except (ProbschedError, ValueError, KeyError, IndexError, TypeError) as e:
        # a trace of another workload can fail anywhere in the replay
        raise ModelError(f"assignment for {net.name}: the trace of task {task.name} "
                         f"({task.hash}) does not replay on it: {e}") from None


def tuned_assignment(net: Network, db: TuningDatabase) -> dict[str, Trace | None]:
    """What ``net.compile(db=...)`` runs: each task's best correct record in ``db`` for
    this host (None, the plain lowering, where it has none)."""
    target = host().key
    out: dict[str, Trace | None] = {}
    for t in net.tasks:
        best = db.best(t.workload, 1, target=target)
        out[t.hash] = best[0].trace if best else None
    return out


def compile_assignment(net: Network, assignment: Assignment,
                       cache: dict[str, Kernel] | None = None) -> CompiledNetwork:
    """The network compiled with ``assignment``'s schedules; ``cache`` (keyed by task hash
    and trace) keeps kernels between assignments that share schedules."""
    programs = assignment_programs(net, assignment)
    cache = {} if cache is None else cache
    kernels: dict[str, Kernel] = {}
    for h, program in programs.items():
        trace = assignment[h]
        key = f"{h}:{trace.key if trace is not None else 'plain'}"
        if key not in cache:
            try:
                cache[key] = compile_program(program, target=host())
            except ProbschedError as e:
                raise ModelError(f"assignment for {net.name}: task {h} does not "
                                 f"compile: {e}") from None
        kernels[h] = cache[key]
    return CompiledNetwork(net, kernels=kernels)


# ---------------------------------------------------------------- kernel latency


def kernel_row(program: Program) -> np.ndarray:
    """The kernel model's input for one program."""
    return program_row(program_features(program))


class KernelLatencyModel:
    """Gradient-boosted regression of log(kernel seconds) on :func:`kernel_row`. Records
    may name their workload (its structural hash); a prediction for a workload the model
    has records of is kept within ``CLIP_MARGIN`` of their measured range: a few dozen
    rows across a network's tasks leave the trees coarse, and an unseen schedule of a seen
    task rarely leaves the range its random samples span (without the clip, one kernel
    predicted 10x too slow was the sum's largest error on the small models)."""

    CLIP_MARGIN = 2.0

    def __init__(self, seed: int = 0, iterations: int = 300):
        self.seed = seed
        self.iterations = iterations
        self._model = None
        self.n_records = 0
        self.ranges: dict[str, tuple[float, float]] = {}

    @property
    def fitted(self) -> bool:
        return self._model is not None

    def fit(self, programs: Sequence[Program | np.ndarray], latencies_s: Sequence[float],
            workloads: Sequence[str] | None = None) -> KernelLatencyModel:
        """Learn from measured kernels (programs or their :func:`kernel_row`, and each
        one's workload hash where known); failed records (latency inf, nan or <= 0) are
        left out."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        if len(programs) != len(latencies_s):
            raise ModelError(f"kernel latency model: {len(programs)} programs but "
                             f"{len(latencies_s)} latencies")
        lat = np.asarray(latencies_s, dtype=np.float64)
        ok = np.isfinite(lat) & (lat > 0)
        if ok.sum() < MIN_KERNEL_RECORDS:
            raise ModelError(f"kernel latency model: {int(ok.sum())} measured kernels, "
                             f"need at least {MIN_KERNEL_RECORDS}")
        rows = self._rows([p for p, keep in zip(programs, ok, strict=True) if keep])
        self._model = HistGradientBoostingRegressor(
            max_iter=self.iterations, learning_rate=0.05, min_samples_leaf=5,
            early_stopping=False, random_state=self.seed).fit(rows, np.log(lat[ok]))
        self.n_records = int(ok.sum())
        self.ranges = {}
        if workloads is not None:
            if len(workloads) != len(programs):
                raise ModelError(f"kernel latency model: {len(programs)} programs but "
                                 f"{len(workloads)} workload hashes")
            for key, s, keep in zip(workloads, lat, ok, strict=True):
                if keep:
                    lo, hi = self.ranges.get(key, (s, s))
                    self.ranges[key] = (min(lo, s), max(hi, s))
        return self

    def predict(self, programs: Sequence[Program | np.ndarray],
                workloads: Sequence[str] | None = None) -> np.ndarray:
        """Predicted seconds per program (``workloads``: each one's workload hash, for the
        clip to its measured range)."""
        if self._model is None:
            raise ModelError("kernel latency model: predict before fit (fit it on measured "
                             "records first: KernelLatencyModel.from_database)")
        out = np.exp(self._model.predict(self._rows(programs)))
        for k, key in enumerate(workloads or ()):
            if key in self.ranges:
                lo, hi = self.ranges[key]
                out[k] = min(max(out[k], lo / self.CLIP_MARGIN), hi * self.CLIP_MARGIN)
        return out

    @staticmethod
    def _rows(programs: Sequence[Program | np.ndarray]) -> np.ndarray:
        return np.stack([kernel_row(p) if isinstance(p, Program) else np.asarray(p)
                         for p in programs]).astype(np.float64)

    @classmethod
    def from_database(cls, net: Network, db: TuningDatabase, *, seed: int = 0
                      ) -> KernelLatencyModel:
        """Fit on ``db``'s correct records of ``net``'s tasks for this host."""
        programs: list[Program] = []
        latencies: list[float] = []
        hashes: list[str] = []
        target = host()
        for t in net.tasks:
            for r in db.records(t.workload, only_ok=True):
                if r.target != target.key:
                    continue
                try:
                    programs.append(r.trace.replay(t.workload, target=target).program)
                except ProbschedError:
                    continue
                latencies.append(r.latency_s)
                hashes.append(t.hash)
        if len(programs) < MIN_KERNEL_RECORDS:
            raise ModelError(f"{net.name}: the database has {len(programs)} correct records "
                             f"of the model's tasks for {target.key}; need at least "
                             f"{MIN_KERNEL_RECORDS} (tune the model first)")
        return cls(seed=seed).fit(programs, latencies, hashes)


# ---------------------------------------------------------------- the predictor


@dataclass(frozen=True)
class LatencyPrediction:
    """One assignment's prediction: per task the predicted kernel seconds, the sum
    baseline (weight x kernel over tasks) and the graph model's figure (None: no graph
    model fitted)."""

    kernel_s: dict[str, float]
    sum_s: float
    graph_s: float | None

    @property
    def best_s(self) -> float:
        """The graph model's figure where there is one, else the sum."""
        return self.graph_s if self.graph_s is not None else self.sum_s


class LatencyPredictor:
    """A kernel latency model and, optionally, a fitted graph model."""

    def __init__(self, kernels: KernelLatencyModel, graph: GraphLatencyModel | None = None):
        self.kernels = kernels
        self.graph = graph
        self._rows: dict[str, tuple[np.ndarray, bool]] = {}  # by task hash and trace key

    def kernels_of(self, net: Network, assignment: Assignment
                   ) -> tuple[dict[str, float], dict[str, bool]]:
        """Per task hash, the predicted kernel seconds and whether the kernel forks threads.
        A schedule seen before is not replayed or featurized again (that is most of a
        prediction's time)."""
        assignment_programs_checked(net, assignment)
        keys = {h: f"{h}:{tr.key if tr is not None else 'plain'}" for h, tr in
                assignment.items()}
        for t in net.tasks:  # only the schedules not seen yet are replayed
            if keys[t.hash] not in self._rows:
                program = _task_program(net, t, assignment[t.hash])
                self._rows[keys[t.hash]] = (kernel_row(program), forks(program))
        hashes = [t.hash for t in net.tasks]
        pred = self.kernels.predict([self._rows[keys[h]][0] for h in hashes], hashes)
        return ({h: float(s) for h, s in zip(hashes, pred, strict=True)},
                {h: self._rows[keys[h]][1] for h in hashes})

    def features(self, net: Network, assignment: Assignment) -> np.ndarray:
        """The graph model's readout row of ``assignment`` (see :mod:`.latency_graph`)."""
        kernel_s, forked = self.kernels_of(net, assignment)
        return step_features(net, forked, kernel_s)

    def predict(self, net: Network, assignment: Assignment) -> LatencyPrediction:
        """The prediction for ``assignment``; nothing is compiled or measured."""
        kernel_s, forked = self.kernels_of(net, assignment)
        row = step_features(net, forked, kernel_s)
        graph_s = None
        if self.graph is not None and self.graph.fitted:
            graph_s = float(self.graph.predict(row[None])[0])
        return LatencyPrediction(kernel_s, float(row[0]), graph_s)


# ---------------------------------------------------------------- scoring


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation (scipy's; ties get their mean rank); nan for fewer than
    2 or a constant side."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) != len(y):
        raise ModelError(f"rank correlation: {len(x)} predictions but {len(y)} measurements")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def latency_errors(predicted_s: ArrayLike, measured_s: ArrayLike) -> dict:
    """Absolute % errors of predictions against measured latencies (median, mean, max)
    and the rank correlation, as plain JSON values."""
    pred, meas = np.asarray(predicted_s, np.float64), np.asarray(measured_s, np.float64)
    if pred.shape != meas.shape or pred.ndim != 1 or len(pred) == 0:
        raise ModelError(f"latency errors: {pred.shape} predictions against "
                         f"{meas.shape} measurements (need equal, non-empty 1-D)")
    if not (np.all(np.isfinite(meas)) and np.all(meas > 0)):
        raise ModelError("latency errors: a measured latency is not a positive number")
    pct = 100.0 * np.abs(pred - meas) / meas
    return {"n": len(pct), "median_abs_pct": float(np.median(pct)),
            "mean_abs_pct": float(pct.mean()), "max_abs_pct": float(pct.max()),
            "spearman": spearman(pred, meas)}
