"""Random choices, with MetaSchedule's semantics, and the repair of stale decisions.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> tiles = sample_perfect_tile(rng, 512, 4, 16)
>>> import math; math.prod(tiles) == 512 and tiles[-1] <= 16
True
"""

from __future__ import annotations

import math

import numpy as np


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def sample_perfect_tile(rng: np.random.Generator, extent: int, n: int, max_innermost: int
                        ) -> list[int]:
    """``n`` factors multiplying to ``extent``, innermost <= ``max_innermost``: the innermost
    uniformly among the allowed divisors, then each remaining prime factor in a uniformly
    random tile."""
    inner_choices = [d for d in divisors(extent) if d <= max_innermost]
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
    p = np.asarray(probs, dtype=float)
    return int(rng.choice(len(p), p=p / p.sum()))
