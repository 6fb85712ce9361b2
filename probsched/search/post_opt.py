"""Post-optimization: coordinate descent on the best candidate's decisions, measured (the idea
of Droplet search; TVM has it as ``post_optimization``). Evolution finds a good region with
the cost model; the last trials are better spent measuring the best schedule's immediate
neighbours than on the model's guesses.

A neighbour changes one decision to a value next to it: a tile decision moves one prime
factor to an adjacent tile, or between the innermost tile and any other, or exchanges a
prime factor of the innermost tile for one of another (the innermost staying within its
bound); a categorical or compute location steps to the next index either way. The innermost
tile is usually the register tile, and its best shape is often not one adjacent move away:
from an 8 x 2-vector tile (24, 1, 1, 2) of 48 vectors, 8 x 3 is (16, 1, 1, 3), an exchange
of the 3 for the 2. Each round proposes the unmeasured neighbours of the current best, the
cost model's favourites first (``score``); when one of them is faster (by more than
``min_gain``), it becomes the current best and its neighbours come next; when none is, the
descent has converged and proposes nothing more.

>>> import numpy as np
>>> from probsched.search.mutators import Choice
>>> tiles = Choice("#0", "sample_perfect_tile", (("max_innermost_factor", 8),), (4, 2, 2))
>>> sorted(neighbour_values(tiles))
[(2, 2, 4), (2, 4, 2), (4, 1, 4), (4, 4, 1), (8, 1, 2), (8, 2, 1)]
>>> (16, 1, 1, 3) in set(neighbour_values(Choice("#1", "sample_perfect_tile",
...     (("max_innermost_factor", 4),), (24, 1, 1, 2))))
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..measure import RunResult
from ..schedule.sampling import prime_factors
from .candidates import CandidateMaker
from .mutators import Choice
from .records import succeeded
from .strategy import Candidate

log = logging.getLogger("probsched.tune")


def neighbour_values(choice: Choice) -> Iterator[Any]:
    """The decisions next to ``choice``'s (see the module docstring)."""
    d = choice.decision
    if choice.kind == "sample_perfect_tile":
        yield from _tile_neighbours(tuple(int(t) for t in d),
                                    choice.attr("max_innermost_factor", 16))
    elif choice.kind == "sample_categorical":
        n = len(choice.attr("candidates", ()))
        for step in (-1, 1):
            if 0 <= d + step < n:
                yield d + step
    elif choice.kind == "sample_compute_location":
        for step in (-1, 1):
            if d + step >= -2:
                yield d + step


def _tile_neighbours(tiles: tuple[int, ...], inner_max: int) -> Iterator[tuple[int, ...]]:
    """Adjacent moves of a prime factor, then moves and exchanges with the innermost tile."""
    last = len(tiles) - 1
    seen = {tiles}

    def primes(x: int) -> set[int]:
        return set(prime_factors(x)) if x > 1 else set()

    def trade(src: int, dst: int, give: int, take: int) -> tuple[int, ...] | None:
        t = list(tiles)
        t[src] = t[src] // give * take
        t[dst] = t[dst] // take * give
        out = tuple(t)
        if out[-1] > inner_max or out in seen:
            return None
        seen.add(out)
        return out

    pairs = [(k, k + 1) for k in range(last)] + [(k, last) for k in range(last - 1)]
    for a, b in pairs:
        for src, dst in ((a, b), (b, a)):
            for p in sorted(primes(tiles[src])):
                if (t := trade(src, dst, p, 1)) is not None:
                    yield t
    for k in range(last):
        for p in sorted(primes(tiles[k])):
            for q in sorted(primes(tiles[last]) - {p}):
                if (t := trade(k, last, p, q)) is not None:
                    yield t


class CoordinateDescent:
    """A search strategy (the :class:`~.strategy.SearchStrategy` protocol) descending from
    ``start`` (measured at ``start_latency_s``); ``measured_keys``: decisions not to measure
    again (shared with the other strategies of the run); ``score`` (the cost model's scores
    of candidates, higher is faster) orders each batch of neighbours."""

    def __init__(self, maker: CandidateMaker, start: Candidate, start_latency_s: float,
                 measured_keys: set[str], *, min_gain: float = 0.01,
                 score: Callable[[Sequence[Candidate]], Any] | None = None):
        self.maker, self.score = maker, score
        self.current, self.current_s = start, start_latency_s
        self.measured_keys = measured_keys
        self.min_gain = min_gain
        self.converged = False
        self.steps = 0  # moves to a better neighbour
        self._pending: list[Candidate] | None = None

    def _neighbours(self) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        base = {c.address: c.decision for c in self.current.choices}
        for choice in self.current.choices:
            for value in neighbour_values(choice):
                cand = self.maker.make({**base, choice.address: value})
                if cand is not None and cand.key not in self.measured_keys:
                    out.setdefault(cand.key, cand)
        cands = list(out.values())
        if self.score is not None and len(cands) > 1:
            scores = [float(s) for s in self.score(cands)]
            order = sorted(range(len(cands)), key=lambda k: -scores[k])  # stable on ties
            cands = [cands[k] for k in order]
        return cands

    def propose(self, n: int) -> list[Candidate]:
        if self.converged:
            return []
        if self._pending is None:
            self._pending = self._neighbours()
        batch, self._pending = self._pending[:n], self._pending[n:]
        if not batch:
            self._converge()
        return batch

    def measured(self, candidates: Sequence[Candidate],
                 results: Sequence[RunResult] | None = None) -> None:
        self.measured_keys.update(c.key for c in candidates)
        if results is None:
            return
        best, best_s = None, self.current_s * (1 - self.min_gain)
        for cand, res in zip(candidates, results, strict=True):
            if succeeded(res) and not res.loaded and res.latency_s < best_s:
                best, best_s = cand, res.latency_s
        if best is not None:
            log.info("post-optimization: a neighbour is faster, %.4g ms (step %d)",
                     best_s * 1e3, self.steps + 1)
            self.current, self.current_s = best, best_s
            self.steps += 1
            self._pending = None  # the new best's neighbours next
        elif self._pending == []:
            self._converge()

    def _converge(self) -> None:
        if not self.converged:
            log.info("post-optimization converged after %d steps: no neighbour of the best "
                     "(%.4g ms) is faster", self.steps, self.current_s * 1e3)
        self.converged = True


class WithPostOptimization:
    """A strategy (``main``) for the first ``1 - share`` of ``trials``, then coordinate
    descent from the best candidate measured so far (or ``start``, a stored best) for the
    rest; back to ``main`` if the descent converges early. The SearchStrategy protocol."""

    def __init__(self, main: Any, maker: CandidateMaker, trials: int, share: float,
                 measured_keys: set[str], start: tuple[Candidate, float] | None = None):
        if not 0 <= share < 1:
            raise ValueError(f"post_optimization must be a share in [0, 1), got {share}")
        self.main, self.maker, self.measured_keys = main, maker, measured_keys
        self.main_trials = trials - int(math.floor(trials * share))
        self.done = 0
        self.best = start
        self.descent: CoordinateDescent | None = None
        self.name = getattr(main, "name", "evolution")
        self.proposing = self.name  # which of the two made the last batch

    def _active(self) -> Any:
        if self.descent is None and self.done >= self.main_trials and self.best is not None:
            log.info("post-optimization: coordinate descent from the best so far (%.4g ms) "
                     "after %d trials", self.best[1] * 1e3, self.done)
            self.descent = CoordinateDescent(self.maker, *self.best, self.measured_keys,
                                             score=getattr(self.main, "scores", None))
        if self.descent is not None and not self.descent.converged:
            return self.descent
        return self.main

    def propose(self, n: int) -> list[Candidate]:
        active = self._active()
        if active is self.main and self.descent is None and self.done < self.main_trials:
            n = min(n, self.main_trials - self.done)  # the descent starts on time
        batch = active.propose(n)
        self.proposing = self.name if active is self.main else "post-opt"
        if not batch and active is not self.main:
            batch = self.main.propose(n)
            self.proposing = self.name
        return batch

    def measured(self, candidates: Sequence[Candidate],
                 results: Sequence[RunResult] | None = None) -> None:
        self.done += len(candidates)
        if results is not None:
            for cand, res in zip(candidates, results, strict=True):
                if succeeded(res) and not res.loaded and (
                        self.best is None or res.latency_s < self.best[1]):
                    self.best = (cand, res.latency_s)
        self.main.measured(candidates, results)
        if self.descent is not None:
            self.descent.measured(candidates, results)

    @property
    def stats(self) -> dict:
        out = dict(getattr(self.main, "stats", {}))
        out["post_optimization_steps"] = 0 if self.descent is None else self.descent.steps
        out["post_optimization_converged"] = bool(self.descent and self.descent.converged)
        return out
