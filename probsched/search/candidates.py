"""Making candidates: running the space on a fresh schedule, with given decisions (by
address) or sampling afresh. Every strategy makes its candidates here, so the cache of
replays (by decisions: a small space is revisited all the time) is shared between them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..schedule import Schedule
from ..target import Target, resolve
from .mutators import choices_of
from .strategy import Candidate


def frozen(decisions: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Decisions as a hashable tuple of (address, decision)."""
    return tuple((a, tuple(d) if isinstance(d, list | tuple) else d)
                 for a, d in decisions.items())


class CandidateMaker:
    """Candidates of ``space`` for ``workload`` and ``target``; each run's schedule seeded
    from ``rng``. ``stats``: replays run, cache hits, replays the schedule refused."""

    def __init__(self, workload: Workload, space, target: Target | str | None,
                 rng: np.random.Generator):
        self.workload, self.space, self.target = workload, space, resolve(target)
        self.rng = rng
        self._replays: dict[tuple, Candidate | None] = {}
        self.stats = {"replays": 0, "cache_hits": 0, "failed_replays": 0}

    def make(self, decisions: Mapping[str, Any] | None) -> Candidate | None:
        """Run the space (with ``decisions``, or sampling fresh); None when it fails."""
        cache_key = None
        if decisions is not None:
            cache_key = frozen(decisions)
            if cache_key in self._replays:
                self.stats["cache_hits"] += 1
                return self._replays[cache_key]
        sch = Schedule(self.workload, seed=int(self.rng.integers(2**31)), target=self.target)
        self.stats["replays"] += 1
        cand: Candidate | None
        try:
            made = self.space.apply(sch, decisions)
            trace = sch.trace
            cand = Candidate(frozen(made), trace, sch.program, trace.key, choices_of(trace))
        except ProbschedError:
            self.stats["failed_replays"] += 1
            cand = None
        if cache_key is not None:
            self._replays[cache_key] = cand
        if cand is not None:
            self._replays[cand.decisions] = cand
        return cand
