"""Random choices, with MetaSchedule's semantics, and the repair of stale decisions.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> tiles = sample_perfect_tile(rng, 512, 4, 16)
>>> import math; math.prod(tiles) == 512 and tiles[-1] <= 16
True
"""

from __future__ import annotations

import bisect
import collections
import functools
import itertools
import math

import numpy as np


def prime_factors(n: int) -> list[int]:
    """The prime factors of ``n >= 1`` in ascending order, with multiplicity. Fast for every
    extent: trial division by the small primes, then Miller-Rabin and Pollard's rho
    (Brent's variant) for what is left, so ``10**30`` or the prime ``10**18 + 3`` take
    microseconds, not hours."""
    return list(_factor(n))


@functools.lru_cache(maxsize=4096)
def _factor(n: int) -> tuple[int, ...]:
    out: list[int] = []
    for p in _SMALL_PRIMES:
        if p * p > n:
            break
        while n % p == 0:
            out.append(p)
            n //= p
    if n > 1:
        pending = [n]
        while pending:
            m = pending.pop()
            if m < _TRIAL_BOUND**2 or _is_prime(m):  # no factor below the bound is left
                out.append(m)
            else:
                d = _rho(m)
                pending += [d, m // d]
    return tuple(sorted(out))


def divisors(n: int, bound: int | None = None) -> list[int]:
    """The divisors of ``n >= 1`` (those up to ``bound`` when given) in ascending order,
    made from the prime factors."""
    found = [1]
    for p, k in sorted(collections.Counter(_factor(n)).items()):
        found += [d * p**e for d in found for e in range(1, k + 1)
                  if bound is None or d * p**e <= bound]
    return sorted(found)


_TRIAL_BOUND = 1000
_SMALL_PRIMES = [p for p in range(2, _TRIAL_BOUND)
                 if all(p % q for q in range(2, math.isqrt(p) + 1))]
# Miller-Rabin with these bases decides every n < 3.3 * 10**24; above, a composite passes with
# probability below 4**-20 (and would only make a tiling coarser).
_WITNESSES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def _is_prime(n: int) -> bool:
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in _WITNESSES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n: int) -> int:
    """A proper divisor of the odd composite ``n`` (Pollard-Brent; deterministic: the
    constants are tried in order)."""
    for c in range(1, n):
        y, m, g, r, q = 2, 128, 1, 1, 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:  # the batch overshot: step back one at a time
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g
    raise AssertionError(f"no factor of {n} found")


def sample_perfect_tile(rng: np.random.Generator, extent: int, n: int, max_innermost: int
                        ) -> list[int]:
    """``n`` factors multiplying to ``extent``, innermost <= ``max_innermost``: the innermost
    uniformly among the allowed divisors, then each remaining prime factor in a uniformly
    random tile."""
    inner_choices = divisors(extent, max_innermost)
    innermost = inner_choices[int(rng.integers(len(inner_choices)))]
    tiles = [1] * n
    tiles[-1] = innermost
    if n > 1:
        for p in prime_factors(extent // innermost):
            tiles[int(rng.integers(n - 1))] *= p
    else:
        tiles[0] = extent
    return tiles


def repair_perfect_tile(decision: list[int], extent: int, max_innermost: int) -> list[int]:
    """Fix a tile decision made for another extent, from the innermost tile out: each keeps
    the largest part of its factor that still divides what is left; the outermost takes the
    rest."""
    n = len(decision)
    out = [1] * n
    left = extent
    for k in range(n - 1, 0, -1):
        f = math.gcd(int(decision[k]), left)
        if k == n - 1:
            while f > max_innermost:
                f //= prime_factors(f)[-1]
        out[k] = f
        left //= f
    out[0] = left
    return out


def sample_categorical(rng: np.random.Generator, probs: list[float]) -> int:
    """An index drawn with probabilities ``probs`` (finite, >= 0, not all 0; normalized here).

    What ``rng.choice(len(probs), p=probs / sum)`` draws, from the same one uniform number
    and by the same arithmetic (numpy's: the running sum, divided by its last element, and
    the first index above the number), without numpy's per-call overhead (about 30 us here,
    for a few hundred ns of work), since search samples thousands of times a round.

    >>> rng = np.random.default_rng(5)
    >>> [sample_categorical(rng, [1, 2, 3, 4]) for _ in range(6)]
    [3, 3, 2, 1, 0, 2]
    """
    p = np.asarray(probs, dtype=float)
    normalized = (p / p.sum()).tolist()
    cdf = list(itertools.accumulate(normalized))
    last = cdf[-1]
    cdf = [c / last for c in cdf]
    return bisect.bisect_right(cdf, rng.random())
