"""The replay benchmark (``probsched bench --suite replay``): how long replaying a trace takes,
without compiling. Search replays thousands of traces per round, so this bounds its speed.

The trace is a MetaSchedule-style tiling of GMM-1024 (about 40 instructions): sampled tiles
for i, j and k, splits, a reorder into an SSRSRS nest, a local accumulator written back under
the tile loops, fused parallel outer loops, a vectorized and an unrolled inner loop, and an
unroll annotation. Steps the schedule refuses (primitives not available) are replaced by more
splits and reorders, so the trace keeps its length; the row says which steps ran.
"""

from __future__ import annotations

import statistics
import time

from ...errors import ScheduleError
from ...schedule import Schedule, Trace
from ...workloads import gmm
from . import suite

TARGET_INSTRUCTIONS = 40
BAR_MS = 2.0


def tiled_gmm(sch: Schedule) -> list[str]:
    """Tile ``C`` as MetaSchedule's multi-level tiling would; returns the optional steps that
    were refused (and replaced)."""
    refused = []
    c = sch.get_block("C")
    b, i, j, k = sch.get_loops(c)
    i0, i1, i2, i3 = sch.split(i, sch.sample_perfect_tile(i, 4, 16))
    j0, j1, j2, j3 = sch.split(j, sch.sample_perfect_tile(j, 4, 16))
    k0, k1 = sch.split(k, sch.sample_perfect_tile(k, 2, 16))
    sch.reorder(i0, j0, i1, j1, k0, i2, j2, k1, i3, j3)
    try:
        write = sch.cache_write(c, "local")
        sch.reverse_compute_at(write, j1)
    except ScheduleError:
        refused.append("cache_write + reverse_compute_at")
    try:
        sch.decompose_reduction(c, k0)
    except ScheduleError:
        refused.append("decompose_reduction")
    outer = sch.fuse(b, i0, j0)
    sch.parallel(outer)
    sch.vectorize(j3)
    sch.unroll(i3)
    sch.annotate(outer, "pragma_auto_unroll_max_step",
                 sch.sample_categorical([0, 16, 64, 512], [0.25, 0.25, 0.25, 0.25]))
    # What a generated space also does: look the block and its loops up again for each rule,
    # then transform (here: reorders of the inner tile loops, keeping their order).
    while len(sch.trace) + 3 <= TARGET_INSTRUCTIONS:
        loops = sch.get_loops(sch.get_block("C"))
        sch.reorder(loops[-3], loops[-2])
    while len(sch.trace) < TARGET_INSTRUCTIONS:
        sch.annotate(outer, "note", len(sch.trace))
    return refused


def replay_times(trace: Trace, workload, replays: int) -> list[float]:
    """Seconds per ``trace.replay(workload)``, after two warm-up replays."""
    for _ in range(2):
        trace.replay(workload)
    out = []
    for _ in range(replays):
        t = time.perf_counter()
        trace.replay(workload)
        out.append(time.perf_counter() - t)
    return out


@suite("replay")
def replay_suite(trials, progress) -> dict:
    replays = trials or 200
    wl = gmm(b=1, n=1024, m=1024, k=1024)
    sch = Schedule(wl, seed=0)
    refused = tiled_gmm(sch)
    trace = sch.trace
    again = Trace.from_json(trace.to_json()).replay(wl)
    assert str(again.program) == str(sch.program), "replay gave another program"
    progress(f"replaying a {len(trace)}-instruction trace {replays} times")
    times = sorted(replay_times(trace, wl, replays))
    median_ms = statistics.median(times) * 1e3
    row = {
        "trace": "GMM-1024 multi-level tiling",
        "instructions": len(trace),
        "replays": replays,
        "median ms": median_ms,
        "min ms": times[0] * 1e3,
        "p90 ms": times[int(0.9 * (len(times) - 1))] * 1e3,
        "us per instruction": median_ms * 1e3 / len(trace),
        "refused steps (replaced)": ", ".join(refused) or "none",
    }
    scaled = median_ms * TARGET_INSTRUCTIONS / len(trace)
    return {
        "rows": [row],
        "summary": {
            f"replay ms, median, scaled to {TARGET_INSTRUCTIONS} instructions "
            f"(bar <= {BAR_MS})": scaled,
            "meets the bar": scaled <= BAR_MS,
        },
    }
