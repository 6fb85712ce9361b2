"""Mutators: 1,000 mutations each keep their invariants and reach variety; mutated decisions
replay; a space without the choice a mutator needs makes it not applicable."""

from __future__ import annotations

import math

import numpy as np
import pytest

import probsched as ps
from probsched.search.mutators import (
    MUTATORS,
    choices_of,
    default_probs,
    mutate,
    propose,
)
from probsched.workloads import c1d

N = 1000


@ps.space
def rich(sch):
    """Tiles of 64 in 4 (innermost <= 8), of 48 in 3 (innermost <= 4), an unroll categorical,
    a parallel-extent categorical, the padding's compute location."""
    p = sch.get_block("P")
    c = sch.get_block("C")
    n, lo, co, rl, rc = sch.get_loops(c)
    tl = sch.sample_perfect_tile(lo, n=4, max_innermost_factor=8)
    tc = sch.sample_perfect_tile(co, n=3, max_innermost_factor=4)
    l0, l1, l2, l3 = sch.split(lo, tl)
    c0, c1, c2 = sch.split(co, tc)
    sch.reorder(l0, c0, l1, c1, rl, rc, l2, c2, l3)
    step = sch.sample_categorical([0, 16, 64, 512], [0.25, 0.25, 0.25, 0.25])
    sch.annotate(l0, "unroll_max_step", step)
    par = sch.sample_categorical([1, 2, 3], [0.4, 0.3, 0.3])
    sch.annotate(l0, "parallel_extent", par)
    sch.compute_at(p, sch.sample_compute_location(p))


@ps.space
def tiles_only(sch):
    i = sch.get_loops(sch.get_block("C"))[1]
    sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=4))


def workload():
    return c1d(l=64, ci=4, co=48, kernel=3, stride=1, pad=1)


def sample(space, wl, seed=0):
    sch = ps.Schedule(wl, seed=seed)
    made = space.apply(sch)
    return sch, made


def test_choices_pair_addresses_with_sampling_instructions():
    sch, made = sample(rich, workload())
    choices = choices_of(sch.trace)
    assert [c.address for c in choices] == ["#0", "#1", "#2", "#3", "#4"]
    assert [c.kind for c in choices] == ["sample_perfect_tile"] * 2 + \
        ["sample_categorical"] * 2 + ["sample_compute_location"]
    assert [c.parallel_extent for c in choices] == [False, False, False, True, False]
    assert choices[0].attr("max_innermost_factor") == 8


def test_default_probabilities_are_metaschedules_cpu_set():
    assert default_probs() == {"tile_size": 0.90, "categorical": 0.03,
                               "compute_location": 0.05, "parallel_extent": 0.02}


def _mutations(name: str, seed: int = 0):
    """``N`` applications of one mutator to samples of ``rich`` (one sample per 50)."""
    wl = workload()
    rng = np.random.default_rng(seed)
    out = []
    for k in range(N):
        if k % 50 == 0:
            sch, made = sample(rich, wl, seed=k)
            choices = choices_of(sch.trace)
        changed = MUTATORS[name].fn(choices, rng)
        assert changed is not None and len(changed) == 1
        (addr, new), = changed.items()
        old = next(c for c in choices if c.address == addr)
        out.append((old, new))
    return out


def test_tile_size_keeps_the_product_and_the_innermost_bound():
    seen = set()
    for old, new in _mutations("tile_size"):
        assert old.kind == "sample_perfect_tile"
        assert math.prod(new) == math.prod(old.decision)
        assert new[-1] <= old.attr("max_innermost_factor")
        assert all(t >= 1 for t in new) and len(new) == len(old.decision)
        assert tuple(new) != tuple(old.decision)
        seen.add((old.address, tuple(new)))
    assert len({t for a, t in seen if a == "#0"}) >= 15  # 64 in 4 tiles: many outcomes
    assert len({t for a, t in seen if a == "#1"}) >= 5


def test_categorical_picks_another_index_in_range():
    seen = set()
    for old, new in _mutations("categorical"):
        assert old.kind == "sample_categorical" and not old.parallel_extent
        assert 0 <= new < len(old.attr("candidates")) and new != old.decision
        seen.add(new)
    assert seen == {0, 1, 2, 3}


def test_compute_location_picks_another_index():
    seen = set()
    for old, new in _mutations("compute_location"):
        assert old.kind == "sample_compute_location"
        assert new >= -2 and new != old.decision
        seen.add(new)
    assert {-2, -1, 0, 1} <= seen


def test_parallel_extent_steps_to_a_neighbour():
    seen = set()
    for old, new in _mutations("parallel_extent"):
        assert old.parallel_extent
        assert abs(new - old.decision) == 1 and 0 <= new < 3
        seen.add((old.decision, new))
    assert len(seen) == 4


def test_mutators_without_their_choice_are_not_applicable():
    sch, made = sample(tiles_only, workload())
    choices = choices_of(sch.trace)
    rng = np.random.default_rng(0)
    for name in ("categorical", "compute_location", "parallel_extent"):
        assert MUTATORS[name].fn(choices, rng) is None
    # propose falls through to the one that applies
    for _ in range(20):
        new = propose(choices, rng)
        assert new is not None and new["#0"] != made["#0"]


def test_a_space_without_choices_has_no_mutation():
    wl = workload()
    empty = ps.space(lambda sch: None, name="empty")
    sch, made = sample(empty, wl)
    assert mutate(empty, wl, choices_of(sch.trace), np.random.default_rng(0)) is None


def test_mutated_decisions_replay_and_keep_their_invariants():
    wl = workload()
    rng = np.random.default_rng(1)
    sch, made = sample(rich, wl, seed=3)
    programs = set()
    for _ in range(40):
        out = mutate(rich, wl, choices_of(sch.trace), rng)
        assert out is not None
        sch, made = out
        tl, tc = made["#0"], made["#1"]
        assert math.prod(tl) == 64 and tl[-1] <= 8
        assert math.prod(tc) == 48 and tc[-1] <= 4
        assert 0 <= made["#2"] < 4 and 0 <= made["#3"] < 3 and made["#4"] >= -2
        programs.add(str(sch.program))
    assert len(programs) >= 20


def test_failed_replays_are_retried_then_dropped():
    wl = workload()

    @ps.space
    def fragile(sch):
        i = sch.get_loops(sch.get_block("C"))[1]
        t = sch.sample_perfect_tile(i, n=2, max_innermost_factor=64)
        if sch.get(t[1]) != 64:  # every decision but the sampled one fails
            raise ps.ScheduleError("refused")
        sch.split(i, t)

    calls = []
    original = fragile.apply

    def counting(s, decisions=None):
        calls.append(decisions)
        return original(s, decisions)

    fragile.apply = counting
    sch = ps.Schedule(wl, seed=0)
    original(sch, {"#0": (1, 64)})
    assert mutate(fragile, wl, choices_of(sch.trace), np.random.default_rng(0),
                  retries=3) is None
    assert len(calls) == 3


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_every_mutator_is_registered_with_a_probability(name):
    assert 0 < MUTATORS[name].prob < 1
