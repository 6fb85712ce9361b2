"""Mutators: change one decision of a candidate; never the IR.

A candidate's decisions are keyed by address (see :mod:`probsched.schedule.trace`); each
address belongs to one sampling instruction of the candidate's trace, which says what kind of
choice it is (:class:`Choice`). A mutator picks a choice it understands and returns the changed
decisions, or None when it has nothing to change ("not applicable": it is skipped). The space
is then replayed with the new decisions (:func:`mutate`); a mutation that the schedule refuses
(:class:`~probsched.errors.ProbschedError`) is retried a bounded number of times, then dropped.

The four mutators and their default probabilities are MetaSchedule's CPU set:

- ``tile_size`` (0.90): in one perfect-tile decision move a prime factor from one tile to
  another; the product stays the loop's extent and the innermost tile stays within the
  instruction's ``max_innermost_factor``.
- ``categorical`` (0.03; MetaSchedule's "unroll"): another candidate index of a
  ``sample_categorical``, drawn by the other candidates' probabilities.
- ``compute_location`` (0.05): another location index of a ``sample_compute_location``, among
  inline (-2), root (-1) and 0 .. one past the largest index seen. The trace does not record how
  many locations were legal; the replay repairs an index that no longer is to the nearest valid
  one before it, and the repaired decision is what the candidate keeps.
- ``parallel_extent`` (0.02): a ``sample_categorical`` whose value is annotated on a loop as
  ``annotate(loop, "parallel_extent", c)`` (a marker: codegen ignores it) is a choice of how
  many loops to fuse into the parallel one; the mutator steps it to a neighbouring candidate.
  Spaces without such a marker make it not applicable (skipped).

Extend with :func:`mutator`: ``@mutator("name", prob=0.1)`` on ``f(choices, rng)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ProbschedError
from ..schedule import Schedule
from ..schedule.sampling import prime_factors
from ..schedule.trace import Decisions, Trace

MutatorFn = Callable[[Sequence["Choice"], np.random.Generator], "Decisions | None"]


@dataclass(frozen=True)
class Choice:
    """One random choice of a candidate: its address, instruction kind, attributes (as the
    trace recorded them) and decision."""

    address: str
    kind: str
    attrs: tuple[tuple[str, Any], ...]
    decision: Any
    parallel_extent: bool = False

    def attr(self, name: str, default=None):
        return dict(self.attrs).get(name, default)


@dataclass(frozen=True)
class Mutator:
    name: str
    prob: float
    fn: MutatorFn


MUTATORS: dict[str, Mutator] = {}


def mutator(name: str, *, prob: float) -> Callable[[MutatorFn], MutatorFn]:
    """Register ``f(choices, rng) -> changed decisions | None`` with a default probability."""

    def register(fn: MutatorFn) -> MutatorFn:
        MUTATORS[name] = Mutator(name, prob, fn)
        return fn

    return register


def choices_of(trace: Trace) -> tuple[Choice, ...]:
    """The choices of a candidate: the sampling instructions of its trace, each with its
    address and decision."""
    marked = {inst.inputs[2] for inst in trace.instructions
              if inst.kind == "annotate" and len(inst.inputs) == 3
              and inst.inputs[1] == "parallel_extent"}
    return tuple(
        Choice(inst.address, inst.kind, inst.attrs, trace.decision(inst.address),
               inst.kind == "sample_categorical" and bool(set(inst.outputs) & marked))
        for inst in trace.instructions if inst.address is not None)  # the sampling ones


# ---------------------------------------------------------------- the mutators


def _pick(items: Sequence, rng: np.random.Generator):
    return items[int(rng.integers(len(items)))]


@mutator("tile_size", prob=0.90)
def mutate_tile_size(choices: Sequence[Choice], rng: np.random.Generator) -> Decisions | None:
    tiles = [c for c in choices if c.kind == "sample_perfect_tile"
             and len(c.decision) > 1 and any(t > 1 for t in c.decision)]
    for _ in range(8):
        if not tiles:
            return None
        c = _pick(tiles, rng)
        t = list(c.decision)
        src = _pick([k for k, f in enumerate(t) if f > 1], rng)
        p = _pick(prime_factors(t[src]), rng)
        dst = _pick([k for k in range(len(t)) if k != src], rng)
        t[src] //= p
        t[dst] *= p
        if t[-1] <= c.attr("max_innermost_factor", 16):
            return {c.address: tuple(t)}
    return None


@mutator("categorical", prob=0.03)
def mutate_categorical(choices: Sequence[Choice], rng: np.random.Generator
                       ) -> Decisions | None:
    cats = [c for c in choices if c.kind == "sample_categorical"
            and len(c.attr("candidates", ())) > 1 and not c.parallel_extent]
    if not cats:
        return None
    c = _pick(cats, rng)
    probs = np.array(c.attr("probs"), dtype=float)
    probs[c.decision] = 0.0
    if probs.sum() <= 0:
        probs = np.ones(len(probs))
        probs[c.decision] = 0.0
    return {c.address: int(rng.choice(len(probs), p=probs / probs.sum()))}


@mutator("compute_location", prob=0.05)
def mutate_compute_location(choices: Sequence[Choice], rng: np.random.Generator
                            ) -> Decisions | None:
    locs = [c for c in choices if c.kind == "sample_compute_location"]
    if not locs:
        return None
    c = _pick(locs, rng)
    top = max(x.decision for x in locs) + 1
    return {c.address: _pick([k for k in range(-2, top + 1) if k != c.decision], rng)}


@mutator("parallel_extent", prob=0.02)
def mutate_parallel_extent(choices: Sequence[Choice], rng: np.random.Generator
                           ) -> Decisions | None:
    pars = [c for c in choices if c.parallel_extent and len(c.attr("candidates", ())) > 1]
    if not pars:
        return None
    c = _pick(pars, rng)
    n = len(c.attr("candidates"))
    steps = [d for d in (c.decision - 1, c.decision + 1) if 0 <= d < n]
    return {c.address: _pick(steps, rng)}


# ---------------------------------------------------------------- applying them


def default_probs() -> dict[str, float]:
    return {name: m.prob for name, m in MUTATORS.items()}


def propose(choices: Sequence[Choice], rng: np.random.Generator,
            probs: Mapping[str, float] | None = None) -> Decisions | None:
    """New decisions for a candidate (all of its decisions, one or more changed): mutators
    drawn by ``probs``; a not-applicable one is set aside and another drawn. None when no
    mutator applies."""
    probs = dict(probs or default_probs())
    while probs:
        names = list(probs)
        p = np.array([probs[n] for n in names], dtype=float)
        if p.sum() <= 0:
            return None
        name = names[int(rng.choice(len(names), p=p / p.sum()))]
        changed = MUTATORS[name].fn(choices, rng)
        if changed is not None:
            return {**{c.address: c.decision for c in choices}, **changed}
        del probs[name]
    return None


def mutate(space, workload, choices: Sequence[Choice], rng: np.random.Generator, *,
           probs: Mapping[str, float] | None = None, retries: int = 4, target=None
           ) -> tuple[Schedule, Decisions] | None:
    """Mutate and replay: the new schedule and its decisions (as the replay made them), or
    None when ``retries`` mutations all failed to replay or no mutator applies."""
    for _ in range(retries):
        new = propose(choices, rng, probs)
        if new is None:
            return None
        sch = Schedule(workload, seed=int(rng.integers(2**31)), target=target)
        try:
            made = space.apply(sch, new)
        except ProbschedError:
            continue
        return sch, made
    return None
