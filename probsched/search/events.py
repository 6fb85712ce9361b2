"""Who hears a tuning run as it goes, besides the database: the log and a JSON-lines stream.

:class:`TuneLog` writes what the tuner does to ``logging.getLogger("probsched")``'s
children (the package attaches only a ``NullHandler``; an application configures
handlers): INFO for the start, each round as a row of the round table
(:mod:`.rounds`), and the end; DEBUG for each failed candidate with its reason and each
re-timing; a WARNING when every candidate of a round failed. ``ps.tune`` always adds it.

:class:`JsonLines` writes one JSON object per line, flushed at once, for other tools to follow
a run: ``{"event": "start", ...}``, one ``"measurement"`` per trial, ``"retime"`` for each
timing again, one ``"round"`` per round (a :class:`~.rounds.RoundSummary`) and ``"done"``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import asdict
from typing import IO, TYPE_CHECKING

from ..measure import RunResult
from .callbacks import MeasureCallback
from .records import succeeded
from .rounds import RoundSummary, TuneStart, table_header, table_row
from .strategy import Candidate

if TYPE_CHECKING:
    from .tuner import TuneResult

log = logging.getLogger("probsched.tune")


class TuneLog(MeasureCallback):
    """The tuner's log (see the module docstring)."""

    def __init__(self, logger: logging.Logger = log):
        self.log = logger

    def started(self, start: TuneStart) -> None:
        resumed = f", resuming from {start.resumed} stored records" if start.resumed else ""
        self.log.info("tuning %s (%d flops) for %d trials in rounds of %d, space %s, target "
                      "%s, database %s%s", start.workload, start.flops, start.trials,
                      start.batch, start.space, start.target, start.database, resumed)

    def measured(self, candidate: Candidate, result: RunResult) -> None:
        if not succeeded(result) and self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("candidate %s failed (%s): %s", candidate.key[:16],
                           result.error_kind or "wrong", result.error)

    def retimed(self, candidate: Candidate, result: RunResult) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            what = (f"{result.latency_s * 1e3:.4g} ms" if succeeded(result)
                    else f"failed ({result.error_kind}): {result.error}")
            self.log.debug("candidate %s timed again: %s", candidate.key[:16], what)

    def round_finished(self, summary: RoundSummary) -> None:
        if summary.round == 1:
            self.log.info("%s", table_header())
        self.log.info("%s", table_row(summary))
        if summary.candidates and summary.failures == summary.candidates:
            kinds = ", ".join(f"{k} {n}" for k, n in summary.failure_kinds)
            self.log.warning("every candidate of round %d failed (%s); the reasons are "
                             "in the database and in the DEBUG log", summary.round, kinds)

    def finished(self, result: TuneResult) -> None:
        for line in result.summary().splitlines():
            self.log.info("%s", line)


class JsonLines(MeasureCallback):
    """Events as JSON lines on ``stream`` (standard output when None: the one at the time
    of each write); see the module docstring."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream
        self.trials = 0
        self.retimes = 0
        self.round = 1
        self.flops = 0

    def _write(self, event: str, **fields) -> None:
        out = self.stream if self.stream is not None else sys.stdout
        out.write(json.dumps({"event": event, **fields}, allow_nan=False) + "\n")
        out.flush()

    def started(self, start: TuneStart) -> None:
        self.flops = start.flops
        self._write("start", **asdict(start))

    def _result(self, candidate: Candidate, result: RunResult) -> dict:
        ok = succeeded(result)
        return {"round": self.round, "decisions": candidate.key, "correct": ok,
                "latency_ms": result.latency_s * 1e3 if ok else None,
                "gflops": self.flops / result.latency_s / 1e9
                if ok and result.latency_s > 0 else None,
                "max_abs_err": _finite(result.max_abs_err), "error_kind": result.error_kind,
                "error": None if ok else result.error, "loaded": result.loaded}

    def measured(self, candidate: Candidate, result: RunResult) -> None:
        self.trials += 1
        self._write("measurement", trial=self.trials, **self._result(candidate, result))

    def retimed(self, candidate: Candidate, result: RunResult) -> None:
        self.retimes += 1
        self._write("retime", **self._result(candidate, result))

    def round_finished(self, summary: RoundSummary) -> None:
        self._write("round", **summary.to_json())
        self.round = summary.round + 1

    def finished(self, result: TuneResult) -> None:
        ref = result.reference_latency_s
        self._write(
            "done", workload=result.workload, trials=result.trials,
            failures=result.failures, rounds=len(result.rounds),
            best_latency_ms=result.best_latency_s * 1e3 if result.best_gflops else None,
            best_gflops=result.best_gflops,
            reference_latency_ms=None if ref is None else ref * 1e3,
            wall_s=result.wall_s, search_s=result.search_s, phases_s=dict(result.phases),
            best_trace=None if result.best_trace is None
            else json.loads(result.best_trace.to_json()))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
