"""A hand-written GMM schedule in Python, with its sampled tile sizes pinned to good values.

The GotoBLAS structure, written with schedule primitives: each thread takes 16-column panels
of B (``j0``, parallel), packs the panel it works on into a contiguous buffer
(``cache_read`` + ``compute_at``: the codegen shrinks the copy to the panel), and sweeps the
rows of A in 4-row tiles (``i0``); each 4 x 16 tile of C accumulates in registers
(``cache_write`` + ``reverse_compute_at``, ``decompose_reduction`` hoists its zeroing out of
the k loop) with 4 unrolled rows of 16-lane vector FMAs.

Run it: ``python examples/gmm_schedule.py [N]`` (default 1024) prints the program, checks it
against numpy and reports GFLOP/s side by side with numpy's matmul.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import probsched as ps

TILE_I, TILE_J = 4, 16


def gmm_schedule(sch: ps.Schedule) -> None:
    """Register-tiled, B-packed GMM. The tile sizes are sampled (so the space can be tuned)
    and pinned to 4 x 16 by the decisions given."""
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    ti = sch.sample_perfect_tile(i, n=2, max_innermost_factor=TILE_I,
                                 decision=[sch.loop_extent(i) // TILE_I, TILE_I])
    tj = sch.sample_perfect_tile(j, n=2, max_innermost_factor=TILE_J,
                                 decision=[sch.loop_extent(j) // TILE_J, TILE_J])
    i0, i1 = sch.split(i, ti)
    j0, j1 = sch.split(j, tj)
    sch.reorder(j0, i0, k, i1, j1)
    writeback = sch.cache_write(c, "local")
    sch.reverse_compute_at(writeback, i0)
    packed_b = sch.cache_read(c, "B", "global")
    sch.compute_at(packed_b, j0)
    init = sch.decompose_reduction(c, k)
    for block in (c, writeback, init):  # rows unrolled, columns as vectors
        *_, rows, columns = sch.get_loops(block)
        sch.unroll(rows)
        sch.vectorize(columns)
    sch.vectorize(sch.get_loops(packed_b)[-1])
    sch.parallel(j0)


def main(n: int = 1024) -> None:
    wl = ps.workloads.gmm(b=1, n=n, m=n, k=n)
    sch = ps.Schedule(wl, seed=0)
    gmm_schedule(sch)
    print(sch.program)
    a, b = (np.random.default_rng(0).uniform(-1, 1, (1, n, n)).astype(np.float32)
            for _ in range(2))
    # numpy first: after our kernel, libgomp's threads spin for a while and would slow
    # OpenBLAS down (the isolated runner of `probsched bench` avoids this altogether).
    theirs = _best_seconds(lambda: a[0] @ b[0])
    kernel = ps.compile(sch)
    (c,) = kernel(a, b)
    assert np.allclose(c[0], a[0] @ b[0], atol=1e-3 * n ** 0.5), "wrong result"
    ours = _best_seconds(lambda: kernel(a, b))
    print(f"GMM-{n}: probsched {wl.flops / ours / 1e9:.1f} GFLOP/s, "
          f"numpy {wl.flops / theirs / 1e9:.1f} GFLOP/s, ratio {theirs / ours:.2f}")


def _best_seconds(fn, runs: int = 10) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
