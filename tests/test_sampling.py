"""Sampling instructions: perfect tiles, categorical choices, compute locations; the repair of
stale decisions; all randomness from the schedule's seed."""

from __future__ import annotations

import collections
import math
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.schedule import INLINE, ROOT, sampling
from probsched.workloads import SUITE, gmm, sfm


def loop_of_extent(extent: int, seed: int = 0):
    """A schedule whose loop ``i`` has ``extent`` iterations, and that loop."""
    sch = ps.Schedule(gmm(b=1, n=extent, m=1, k=1), seed=seed)
    return sch, sch.get_loops(sch.get_block("C"))[1]


def draw_tiles(n: int, max_innermost: int, draws: int = 1000, extent: int = 512):
    sch, loop = loop_of_extent(extent)
    out = []
    for _ in range(draws):
        rvs = sch.sample_perfect_tile(loop, n, max_innermost)
        tiles = tuple(sch.get(rv) for rv in rvs)
        assert sch.trace.decision_at(len(sch.trace) - 1) == tiles  # the decision is the tiles
        out.append(tiles)
    return out


# ---------------------------------------------------------------- (c) perfect tiles


def test_perfect_tiles_of_512_into_4_multiply_to_the_extent_and_vary():
    decisions = draw_tiles(4, 16)
    assert all(math.prod(t) == 512 and len(t) == 4 for t in decisions)
    assert all(t[-1] <= 16 for t in decisions)
    assert len(set(decisions)) >= 15
    # The innermost is uniform among the allowed divisors 1, 2, 4, 8, 16 (1000 / 5 each).
    inner = collections.Counter(t[-1] for t in decisions)
    assert set(inner) == {1, 2, 4, 8, 16}
    assert all(120 <= c <= 280 for c in inner.values()), inner


def test_perfect_tiles_of_512_into_2_cover_every_allowed_innermost():
    decisions = draw_tiles(2, 64)
    assert all(math.prod(t) == 512 and t[-1] <= 64 for t in decisions)
    # With two tiles the innermost decides the split: all 7 divisors <= 64 appear.
    assert {t[-1] for t in decisions} == {1, 2, 4, 8, 16, 32, 64}


@pytest.mark.parametrize("extent", [1, 7, 12, 97, 360])
def test_perfect_tiles_of_odd_extents(extent):
    for n, m in [(1, 4), (2, 1), (3, 5)]:
        for tiles in draw_tiles(n, m, draws=50, extent=extent):
            assert math.prod(tiles) == extent and len(tiles) == n
            assert n == 1 or tiles[-1] <= m


def _trial_division(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + [n] * (n > 1)


@given(st.one_of(st.integers(1, 10**6), st.integers(1, 10**12)))
def test_prime_factors_and_divisors_agree_with_trial_division(n):
    factors = sampling.prime_factors(n)
    assert factors == _trial_division(n)
    divs = sampling.divisors(n)
    assert divs == sorted(set(divs)) and all(n % d == 0 for d in divs)
    assert len(divs) == math.prod(k + 1 for k in collections.Counter(factors).values())
    assert sampling.divisors(n, 16) == [d for d in divs if d <= 16]


@pytest.mark.parametrize("extent, factors", [
    (10**30, [2] * 30 + [5] * 30),
    (10**18 + 3, [10**18 + 3]),  # prime: trial division took 76 s
    ((2**31 - 1) ** 2, [2**31 - 1] * 2),
    ((2**61 - 1) * 1_000_003, [1_000_003, 2**61 - 1]),
])
def test_huge_extents_factor_fast(extent, factors):
    start = time.perf_counter()
    assert sampling.prime_factors(extent) == factors
    tiles = sampling.sample_perfect_tile(np.random.default_rng(0), extent, 3, 16)
    assert math.prod(tiles) == extent and tiles[-1] <= 16
    assert time.perf_counter() - start < 2.0


@given(
    decision=st.lists(st.integers(1, 64), min_size=1, max_size=4),
    extent=st.integers(1, 1024),
    max_innermost=st.integers(1, 64),
)
def test_repair_perfect_tile_fits_the_new_extent(decision, extent, max_innermost):
    out = sampling.repair_perfect_tile(decision, extent, max_innermost)
    assert len(out) == len(decision) and all(f >= 1 for f in out)
    assert math.prod(out) == extent
    if len(out) > 1:
        assert out[-1] <= max_innermost
        # From the innermost out: each inner tile keeps a divisor of its old factor.
        assert all(decision[k] % out[k] == 0 for k in range(1, len(out)))
    assert sampling.repair_perfect_tile(out, extent, max_innermost) == out


@given(seed=st.integers(0, 2**32 - 1), extent=st.integers(1, 600), n=st.integers(1, 4),
       max_innermost=st.integers(1, 32))
def test_a_valid_decision_is_left_alone(seed, extent, n, max_innermost):
    tiles = sampling.sample_perfect_tile(np.random.default_rng(seed), extent, n, max_innermost)
    assert math.prod(tiles) == extent
    assert sampling.repair_perfect_tile(tiles, extent, max_innermost) == tiles
    sch, loop = loop_of_extent(extent)
    rvs = sch.sample_perfect_tile(loop, n, max_innermost, decision=tiles)
    assert [sch.get(rv) for rv in rvs] == tiles


def test_a_stale_tile_decision_is_repaired_from_the_innermost_out():
    sch, loop = loop_of_extent(48)
    rvs = sch.sample_perfect_tile(loop, 3, 16, decision=[2, 8, 4])  # made for 64
    assert [sch.get(rv) for rv in rvs] == [3, 4, 4]
    assert sch.trace.decision_at(2) == (3, 4, 4)  # the trace records the repaired decision
    with pytest.raises(ps.ScheduleError, match=r"decision \[2, 8\] has 2 tiles, not 3"):
        sch.sample_perfect_tile(loop, 3, 16, decision=[2, 8])


# ---------------------------------------------------------------- categorical


def test_categorical_frequencies_follow_the_probabilities():
    sch = ps.Schedule(gmm(b=1, n=4, m=4, k=4), seed=7)
    probs = [0.1, 0.0, 0.3, 0.6]
    counts = collections.Counter(
        sch.get(sch.sample_categorical([10, 20, 30, 40], probs)) for _ in range(2000))
    assert counts[20] == 0  # probability 0: never
    for value, p in zip([10, 30, 40], [0.1, 0.3, 0.6], strict=True):
        assert abs(counts[value] / 2000 - p) < 0.05, counts


def test_categorical_decision_is_the_index_and_unnormalised_probs_work():
    sch = ps.Schedule(gmm(b=1, n=4, m=4, k=4), seed=0)
    v = sch.sample_categorical([4, 8, 16], [1, 1, 2])
    assert sch.get(v) == [4, 8, 16][sch.trace.decision_at(0)]
    v = sch.sample_categorical([4, 8, 16], [1, 1, 2], decision=2)
    assert sch.get(v) == 16 and sch.trace.decision_at(1) == 2
    v = sch.sample_categorical([4, 8, 16], [0, 1, 0], decision=7)  # stale: resampled
    assert sch.get(v) == 8 and sch.trace.decision_at(2) == 1


# ---------------------------------------------------------------- compute locations


def _location_targets():
    """(workload, block) pairs: every stage that has a consumer, in small suite shapes."""
    for name in ("C1D", "SFM", "CBR"):
        make, _, small = SUITE[name]
        wl = make(**small)
        for stage in wl.stages[:-1]:
            yield pytest.param(wl, stage.name, id=f"{name}-{stage.name}")


@pytest.mark.parametrize("wl,block", list(_location_targets()))
def test_sampled_compute_locations_are_valid(wl, block):
    sch = ps.Schedule(wl, seed=3)
    b = sch.get_block(block)
    seen = set()
    for _ in range(20):
        loc = sch.sample_compute_location(b)
        decision = sch.trace.decision_at(len(sch.trace) - 1)
        value = sch.get(loc)
        seen.add(decision)
        assert decision >= -2
        assert (decision == -1) == (value == ROOT) and (decision == -2) == (value == INLINE)
        if decision >= 0:
            assert value in {lp.var for lp in sch.program.loops()}
        trial = sch.copy()
        trial.compute_at(b, loc)  # a sampled location is one where compute_at is legal
    assert -1 in seen  # the root is always a candidate


def test_a_stale_compute_location_falls_back_to_a_valid_one_before_it():
    sch = ps.Schedule(sfm(n=4, m=6), seed=0)
    b = sch.get_block("E")
    sch.sample_compute_location(b, decision=99)
    fallback = sch.trace.decision_at(1)
    assert fallback >= -1 and fallback <= 99
    sch.sample_compute_location(b, decision=fallback)
    assert sch.trace.decision_at(2) == fallback
    # Decision -2 (inline) where inlining is impossible: the root.
    m = sch.get_block("M")  # a reduction: never inlined
    sch.sample_compute_location(m, decision=-2)
    assert sch.trace.decision_at(4) == -1


# ---------------------------------------------------------------- seeds


def sampling_space(sch: ps.Schedule) -> None:
    """A space with every kind of random choice."""
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    for loop in (i, j, k):
        sch.split(loop, sch.sample_perfect_tile(loop, 3, 8))
    for _ in range(4):
        sch.sample_categorical([1, 2, 3, 4], [0.25] * 4)


def run(seed: int) -> ps.Trace:
    sch = ps.Schedule(gmm(b=1, n=96, m=64, k=48), seed=seed)
    sampling_space(sch)
    return sch.trace


def test_same_seed_gives_the_same_trace_whatever_the_global_random_state():
    first = run(5)
    np.random.seed(1)
    random.seed(1)
    assert run(5) == first
    np.random.seed(2)
    random.seed(2)
    assert run(5) == first and str(run(5)) == str(first)


def test_different_seeds_give_different_traces():
    traces = {run(seed).to_json() for seed in range(6)}
    assert len(traces) == 6


def test_a_copy_samples_deterministically_from_its_parent():
    a = ps.Schedule(gmm(b=1, n=96, m=64, k=48), seed=11)
    b = ps.Schedule(gmm(b=1, n=96, m=64, k=48), seed=11)
    ca, cb = a.copy(), b.copy()
    sampling_space(ca)
    sampling_space(cb)
    assert ca.trace == cb.trace


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 5), st.floats(0, 1e6)), min_size=1, max_size=9)
       .filter(lambda ps: sum(ps) > 0), st.integers(0, 2**32 - 1))
def test_sample_categorical_draws_what_numpy_choice_draws(probs, seed):
    # The same draws as rng.choice with the normalized probabilities, from the same stream:
    # traces sampled before keep their decisions.
    ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
    p = np.asarray(probs, dtype=float)
    for _ in range(5):
        assert sampling.sample_categorical(ours, probs) == int(
            numpys.choice(len(p), p=p / p.sum()))
    assert ours.random() == numpys.random()
