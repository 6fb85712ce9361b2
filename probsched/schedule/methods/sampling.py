"""Sampling instructions: the random choices of a space. Each records its decision under its
address (:mod:`..trace`); the schedule's decision map, when it has one for that address, is
used instead of sampling, and a decision that no longer fits is repaired."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...ir import tree
from ...values import is_int, is_number
from .. import sampling
from ..primitives import inlining, location
from ..registry import instruction
from ..state import INLINE, MAX_LOOP_DEPTH, ROOT, ScheduleState
from ..trace import RV


class SamplingMethods(ScheduleState):
    """Random choices; the generator is the schedule's (seeded)."""

    @instruction("loop int int", returns="values", sampling=True)
    def sample_perfect_tile(self, loop: RV, n: int, max_innermost_factor: int = 16,
                            decision: Sequence[int] | None = None) -> list[RV]:
        """``n`` tile sizes multiplying to ``loop``'s extent, the innermost at most
        ``max_innermost_factor``. A given ``decision`` is used (repaired if it no longer
        fits the extent)."""
        address, decision = self._choice(decision)
        args = (loop, n, max_innermost_factor)
        var = self._loop(loop, "sample_perfect_tile", args, 1)
        if not is_int(n) or n < 1:
            raise self._fail("sample_perfect_tile", args, "argument 2, 'n': expected n >= 1")
        if n > MAX_LOOP_DEPTH:
            raise self._fail("sample_perfect_tile", args, f"argument 2, 'n': {n} tiles, more "
                             f"than {MAX_LOOP_DEPTH} (the limit: a loop nest holds that many)")
        if not is_int(max_innermost_factor) or max_innermost_factor < 1:
            raise self._fail("sample_perfect_tile", args,
                             "argument 3, 'max_innermost_factor': expected a positive integer")
        extent = tree.loop_at(self.program, tree.loop_path(self.program, var)).extent
        if decision is None:
            tiles = sampling.sample_perfect_tile(self.rng, extent, n, max_innermost_factor)
        else:
            if not isinstance(decision, list | tuple) or not all(
                    is_int(x) and x > 0 for x in decision):
                raise self._fail("sample_perfect_tile", args,
                                 f"decision {decision!r} is not a list of positive integers")
            tiles = [int(x) for x in decision]
            if len(tiles) != n:
                raise self._fail("sample_perfect_tile", args,
                                 f"decision {tiles} has {len(tiles)} tiles, not {n}")
            if math.prod(tiles) != extent or tiles[-1] > max_innermost_factor:
                tiles = sampling.repair_perfect_tile(tiles, extent, max_innermost_factor)
        rvs = [self._rv("v", t) for t in tiles]
        self._record("sample_perfect_tile", (loop,), tuple(rvs),
                     attrs=(("n", n), ("max_innermost_factor", max_innermost_factor)),
                     decision=tiles, address=address)
        return rvs

    @instruction("ints probs", returns="value", sampling=True)
    def sample_categorical(self, candidates: Sequence[int], probs: Sequence[float],
                           decision: int | None = None) -> RV:
        """One of ``candidates`` with probabilities ``probs``; the decision is the index."""
        address, decision = self._choice(decision)
        args = (list(candidates), list(probs))
        if not candidates or len(candidates) != len(probs):
            raise self._fail("sample_categorical", args,
                             "candidates and probs must be non-empty and of equal length")
        if not all(is_int(c) for c in candidates):
            raise self._fail("sample_categorical", args, "candidates must be integers")
        if (not all(is_number(p) and math.isfinite(p) and p >= 0 for p in probs)
                or sum(probs) <= 0):
            raise self._fail("sample_categorical", args,
                             "probs must be finite numbers >= 0, not all 0")
        if decision is not None and not is_int(decision):
            raise self._fail("sample_categorical", args,
                             f"decision {decision!r} is not a candidate index")
        if decision is None or not (0 <= decision < len(candidates)):
            decision = sampling.sample_categorical(self.rng, list(probs))
        rv = self._rv("v", candidates[int(decision)])
        self._record("sample_categorical", (), (rv,),
                     attrs=(("candidates", tuple(candidates)), ("probs", tuple(probs))),
                     decision=int(decision), address=address)
        return rv

    @instruction("block", returns="loop", sampling=True)
    def sample_compute_location(self, block: RV, decision: int | None = None) -> RV:
        """Where ``block`` could be computed: one of its consumer's loops where compute_at is
        legal, the root (-1) or inline (-2, when the block can be inlined). The decision
        ``k >= 0`` is the k-th legal loop, outermost first. A stale decision falls back to
        the nearest valid location before it. Pass the result to compute_at.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.c1d(l=4, ci=1, co=2, kernel=3, stride=1, pad=1))
        >>> p = sch.get_block("P")
        >>> loc = sch.sample_compute_location(p, decision=1)
        >>> sch.get(loc)
        'l_1'
        >>> sch.compute_at(p, loc)
        >>> print(sch.trace)
        b0 = get_block("P")
        l1 = sample_compute_location(b0, decision=1)
        compute_at(b0, l1)
        """
        address, decision = self._choice(decision)
        name = self._block(block, "sample_compute_location", (block,), 1)
        cands = location.compute_location_candidates(self.program, name)
        choices = [-1] + list(range(len(cands)))
        if inlining.can_inline(self.program, name):
            choices = [-2] + choices
        if decision is not None and not is_int(decision):
            raise self._fail("sample_compute_location", (block,),
                             f"decision {decision!r} is not a location index")
        if decision is None:
            decision = choices[int(self.rng.integers(len(choices)))]
        elif decision not in choices:
            decision = max(c for c in choices if c <= decision) if decision > -2 else -1
        value = {-2: INLINE, -1: ROOT}.get(decision) or cands[decision]
        rv = self._rv("l", value)
        self._record("sample_compute_location", (block,), (rv,), decision=int(decision),
                     address=address)
        return rv
