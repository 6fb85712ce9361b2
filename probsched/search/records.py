"""What a tuning database holds, as plain frozen data: stored workloads and measured records.

A record is one measured candidate: its trace (whose decisions, by address, are its identity
within a workload and target: :func:`~probsched.schedule.decisions_key`), the target it was
built for, every timed run, and the verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..measure import contention as machine_load
from ..measure.runner import RunResult
from ..schedule.trace import Trace


@dataclass(frozen=True)
class WorkloadRow:
    """A stored workload (its canonical text; the database cannot rebuild the object)."""

    id: int
    structural_hash: str
    name: str
    text: str
    flops: int
    created: float


@dataclass(frozen=True)
class Record:
    """One measured candidate. A failed one has ``latency_s = inf`` and says why in
    ``error_kind`` ("build", "crash", "timeout", "wrong" or "error") and ``error``."""

    id: int
    workload_id: int
    trace: Trace
    decisions: str
    target: str
    runs_s: tuple[float, ...]
    latency_s: float
    error: str | None
    error_kind: str | None
    max_abs_err: float
    space: str | None
    seed: int | None
    created: float
    contention: float = 0.0  # see measure/contention.py: > LOADED_CORES means loaded
    repeat: bool = False  # a timing again of a candidate measured before (not a new trial)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.latency_s)

    @property
    def loaded(self) -> bool:
        """Timed while other processes held the CPUs (retaken, and still so)."""
        return self.contention > machine_load.LOADED_CORES

    @property
    def min_s(self) -> float:
        return min(self.runs_s, default=math.inf)

    def result(self) -> RunResult:
        """The measurement as the runner reported it."""
        return RunResult(self.ok, self.latency_s, self.min_s, self.runs_s, self.max_abs_err,
                         self.error, self.error_kind, contention=self.contention)


RECORD_COLUMNS = ("id, workload_id, trace, decisions, target, runs_s, latency_s, error, "
                  "error_kind, max_abs_err, space, seed, created, contention, repeat")


def record_from_row(row: tuple) -> Record:
    """A :class:`Record` from a row of ``RECORD_COLUMNS``."""
    (rid, wid, trace, decisions, target, runs_s, latency_s, error, error_kind, max_abs_err,
     space, seed, created, contention, repeat) = row
    return Record(
        rid, wid, Trace.from_json(trace), decisions, target, tuple(json.loads(runs_s)),
        math.inf if latency_s is None else latency_s, error, error_kind,
        math.nan if max_abs_err is None else max_abs_err, space, seed, created,
        float(contention or 0.0), bool(repeat),
    )


def succeeded(result: RunResult) -> bool:
    """Whether a measurement gives the candidate a latency (correct, no error, finite)."""
    return result.correct and result.error_kind is None and math.isfinite(result.latency_s)
