"""What a tuning run accounts as it goes: the seconds of each phase, one summary per round,
and the round table of the logs (MetaSchedule's per-task table, one row a round).

The phases (:data:`PHASES`): ``search`` (the strategy proposing candidates: sampling,
mutation, replay, features, prediction; post-optimization's neighbours too), ``build``
(compiling a round in the builder's workers), ``run`` (timing and checking, re-timing
included), ``fit`` (the cost model learning from the round) and ``other`` (the rest of the
round's wall time: database writes, callbacks).

>>> s = RoundSummary(1, "evolution", 64, 64, 2, (("build", 2),), 3, 1e-3, 2e6,
...                  (("search", 0.5), ("build", 1.25), ("run", 2.0), ("fit", 0.25),
...                   ("other", 0.0)), 4.0)
>>> print(table_header()); print(table_row(s))
round  strategy   trials  best GFLOP/s  failed   search    build      run      fit    other     wall
    1  evolution      64          2.00       2     0.50     1.25     2.00     0.25     0.00     4.00
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

PHASES = ("search", "build", "run", "fit", "other")
TIMED = PHASES[:-1]
"""The phases clocked explicitly; ``other`` is what is left of a round's wall time."""


class PhaseClock:
    """Seconds per phase: ``with clock("build"): ...`` adds to ``build``; :meth:`lap` gives
    each phase's seconds since the last lap, ``other`` the rest of the wall time."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(PHASES, 0.0)
        self._since = dict.fromkeys(TIMED, 0.0)
        self._lap_start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        if phase not in TIMED:
            raise ValueError(f"unknown phase {phase!r}; known: {', '.join(TIMED)}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.total[phase] += dt
            self._since[phase] += dt

    def lap(self) -> tuple[tuple[tuple[str, float], ...], float]:
        """(seconds per phase, wall seconds) since the last lap (or since the clock began);
        the phases' seconds add up to the wall seconds."""
        now = time.perf_counter()
        wall = now - self._lap_start
        other = max(0.0, wall - sum(self._since.values()))
        self.total["other"] += other
        seconds = (*((p, self._since[p]) for p in TIMED), ("other", other))
        self._since = dict.fromkeys(TIMED, 0.0)
        self._lap_start = now
        return seconds, wall

    def overhead(self) -> float:
        """The search's own seconds so far: everything but building and running."""
        return self.total["search"] + self.total["fit"] + self.total["other"]


@dataclass(frozen=True)
class TuneStart:
    """What a tuning run sets out to do (the first event its callbacks hear)."""

    workload: str
    flops: int
    trials: int
    target: str
    space: str | None
    seed: int
    database: str
    resumed: int  # records of the workload and target already in the database
    batch: int


@dataclass(frozen=True)
class RoundSummary:
    """One round: what was measured, the best so far and where the time went.

    ``trials``: new trials of the run so far; ``failures``: this round's failed ones and
    ``failure_kinds`` by kind ("build", "crash", "timeout", "wrong", "error"); ``retimed``:
    timings again of the round's fastest; ``best_latency_s``: the run's best so far (the
    median of its timings where it was timed again), ``best_gflops`` its GFLOP/s (None:
    nothing correct yet); ``seconds``: per phase, adding up to ``wall_s``."""

    round: int
    strategy: str
    candidates: int
    trials: int
    failures: int
    failure_kinds: tuple[tuple[str, int], ...]
    retimed: int
    best_latency_s: float
    flops: int
    seconds: tuple[tuple[str, float], ...]
    wall_s: float

    @property
    def best_gflops(self) -> float | None:
        ok = math.isfinite(self.best_latency_s) and self.best_latency_s > 0
        return self.flops / self.best_latency_s / 1e9 if ok else None

    def phase(self, name: str) -> float:
        """This round's seconds in phase ``name``."""
        return dict(self.seconds)[name]

    def to_json(self) -> dict:
        """Plain JSON values (infinite latency as None)."""
        out = asdict(self)
        out["best_latency_s"] = None if self.best_gflops is None else self.best_latency_s
        out["best_gflops"] = self.best_gflops
        out["failure_kinds"] = dict(self.failure_kinds)
        out["seconds"] = dict(self.seconds)
        return out


def failure_kinds(kinds: Sequence[str | None]) -> tuple[tuple[str, int], ...]:
    """How many failures of each kind (``None``: a success, not counted)."""
    return tuple(sorted(Counter(k for k in kinds if k is not None).items()))


_COLUMNS = (("round", 5), ("strategy", 9), ("trials", 6), ("best GFLOP/s", 12),
            ("failed", 6), *((p, 7) for p in PHASES), ("wall", 7))


def table_header() -> str:
    """The round table's header (phase columns in seconds)."""
    return "  ".join(name.ljust(w) if name == "strategy" else name.rjust(w)
                     for name, w in _COLUMNS)


def table_row(s: RoundSummary) -> str:
    """One round as a row of the table under :func:`table_header`."""
    best = "-" if s.best_gflops is None else f"{s.best_gflops:.2f}"
    cells = [f"{s.round:5d}", f"{s.strategy[:9]:<9}", f"{s.trials:6d}", f"{best:>12}",
             f"{s.failures:6d}", *(f"{v:7.2f}" for _, v in s.seconds), f"{s.wall_s:7.2f}"]
    return "  ".join(cells)
