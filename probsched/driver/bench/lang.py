"""The language benchmark (``probsched bench --suite lang``): parse + interpret a 50-line space
on GMM-1024, no compile. Search re-runs spaces thousands of times, so this bounds its speed.

Reported medians: the whole step as search does it (the text was parsed before, so the parse
is a cache hit) against the 5 ms bar; and, side by side, an uncached parse of the same text and
the interpretation alone (which is mostly the schedule primitives' own work).
"""

from __future__ import annotations

import statistics
import time

from ...lang import parser
from ...lang.loader import parse
from ...schedule import Schedule
from ...workloads import gmm
from . import suite

BAR_MS = 5.0

SPACE = '''\
def tile(loop, n, inner):
    factors = sample_perfect_tile(loop, n=n, max_innermost_factor=inner)
    return split(loop, factors)

def unroll_short(loop, extent):
    if extent <= 8:
        unroll(loop)
    elif extent <= 32:
        annotate(loop, "unroll_max_step", 16)
    else:
        pass

space tiled for gmm:
    c = get_block("C")
    b, i, j, k = get_loops(c)
    i0, i1, i2, i3 = tile(i, 4, 8)
    j0, j1, j2 = tile(j, 3, 4)
    j3_outer, j3 = split(j2, [None, 16])
    k0, k1 = tile(k, 2, 16)
    reorder(i0, j0, i1, j1, k0, i2, j3_outer, k1, i3, j3)
    acc = cache_write(c, "local")
    reverse_compute_at(acc, j1)
    init = decompose_reduction(c, k0)
    tiles = [i0, j0, i1, j1]
    n_outer = len(tiles)
    for t in [tiles[0], tiles[1]]:
        annotate(t, "outer", 1)
    for t in [i1, j1]:
        annotate(t, "middle", n_outer)
    outer = fuse(b, i0, j0)
    parallel(outer)
    vectorize(j3)
    loops = get_loops(c)
    unroll_short(loops[-2], 8)
    unroll_short(loops[-3], 16)
    for block in [acc, init]:
        inner = get_loops(block)
        vectorize(inner[-1])
    step = sample_categorical([0, 16, 64, 512], [0.25, 0.25, 0.25, 0.25])
    if step > 0:
        annotate(outer, "pragma_auto_unroll_max_step", step)
    else:
        annotate(outer, "pragma_auto_unroll_max_step", 0)
    for r in range(3):
        annotate(outer, "round", r * 2 + 1)
    widths = [min(16, max(1, n_outer * 4)), 8]
    annotate(outer, "width", widths[0])
    count = 0
    for loop in get_loops(c):
        count = count + 1
    annotate(outer, "loops", count)
    annotate(outer, "last", 1)
'''


def _median_ms(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


@suite("lang")
def lang_suite(trials: int | None, progress) -> dict:
    runs = trials or 50
    wl = gmm(b=1, n=1024, m=1024, k=1024)

    def step() -> None:
        parse(SPACE, "bench.sched").space().apply(Schedule(wl, seed=0))

    space = parse(SPACE, "bench.sched").space()
    progress(f"lang: {len(SPACE.splitlines())}-line space, {runs} runs")
    whole = _median_ms(step, runs)
    uncached = _median_ms(lambda: parser._parse.__wrapped__(SPACE, "bench.sched"), runs)
    interpret = _median_ms(lambda: space.apply(Schedule(wl, seed=0)), runs)
    sch = Schedule(wl, seed=0)
    space.apply(sch)
    return {
        "rows": [
            {"measure": "parse (cached) + interpret", "median_ms": whole, "bar_ms": BAR_MS},
            {"measure": "interpret only", "median_ms": interpret, "bar_ms": None},
            {"measure": "parse, not cached", "median_ms": uncached, "bar_ms": None},
        ],
        "summary": {
            "lines": len(SPACE.splitlines()),
            "instructions": len(sch.trace),
            "meets_bar": whole <= BAR_MS,
        },
    }
