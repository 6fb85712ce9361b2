"""GPU schedules shared by the tests of the cuda primitives and of the cuda codegen."""

from __future__ import annotations

import probsched as ps
from probsched.workloads import gmm


def gpu_matmul(n=64, m=64, k=64, ty=8, ri=4, tx=8, rj=4, kt=8, *, decompose=True,
               double_buffer=False):
    """The classic shape: block tiles on blockIdx.y/x, thread tiles on threadIdx.y/x, the
    tiles of A and B read into shared memory per step of the reduction (``double_buffer``:
    the next step's loaded into registers during this one), the accumulators local
    (registers)."""
    sch = ps.Schedule(gmm(b=1, n=n, m=m, k=k), target="cuda")
    c = sch.get_block("C")
    _, i, j, kk = sch.get_loops(c)
    i0, i1, i2 = sch.split(i, [None, ty, ri])
    j0, j1, j2 = sch.split(j, [None, tx, rj])
    k0, k1 = sch.split(kk, [None, kt])
    sch.reorder(i0, j0, i1, j1, k0, k1, i2, j2)
    sch.bind(i0, "blockIdx.y")
    sch.bind(j0, "blockIdx.x")
    sch.bind(i1, "threadIdx.y")
    sch.bind(j1, "threadIdx.x")
    wb = sch.cache_write(c, "local")
    sch.reverse_compute_at(wb, j1)
    a = sch.cache_read(c, "A", "shared")
    sch.compute_at(a, k0)
    b = sch.cache_read(c, "B", "shared")
    sch.compute_at(b, k0)
    if decompose:
        sch.decompose_reduction(c, k0)
    if double_buffer:
        sch.annotate(k0, "double_buffer", 1)
    return sch


def gpu_softmax(n=4, m=64, threads=16, *, reduce_serial_outside=False):
    """Softmax with a row per thread block: the row max and row sum local to each thread,
    their reduce loops split by ``threads`` and bound to threadIdx.x (cross-thread
    reductions), the output's columns over the same threads."""
    sch = ps.Schedule(ps.workloads.sfm(n=n, m=m), target="cuda")
    mb, eb, sb, yb = (sch.get_block(x) for x in "MESY")
    sch.compute_inline(eb)
    i, j = sch.get_loops(yb)
    sch.bind(i, "blockIdx.x")
    _, ji = sch.split(j, [None, threads])
    sch.bind(ji, "threadIdx.x")
    for b in (sb, mb):
        sch.set_scope(b, "local")
        sch.compute_at(b, i)
        r = sch.get_loops(b)[-1]
        ro, ri = sch.split(r, [None, threads])
        if not reduce_serial_outside:
            sch.reorder(ri, ro)
        sch.bind(ri, "threadIdx.x")
    return sch


def gpu_norm(n=64, m=48, blocks=16, threads=32, threads2=16):
    """The 2-norm in two kernels: partial sums of squares, one per thread block (rfactor),
    reduced across each block's threads into a local copy and written back to a global
    intermediate; then one thread block reduces those across its threads, and the square
    root follows in it."""
    sch = ps.Schedule(ps.workloads.nrm(n=n, m=m), target="cuda")
    s = sch.get_block("S")
    i, j = sch.get_loops(s)
    fo, _, _ = sch.split(sch.fuse(i, j), [blocks, None, threads])
    rf = sch.rfactor(fo, 0)
    wb = sch.cache_write(rf, "local")
    fo, fm, ft = sch.get_loops(rf)
    sch.reorder(ft, fm)
    sch.bind(fo, "blockIdx.x")
    sch.reverse_compute_at(wb, fo)
    sch.bind(ft, "threadIdx.x")
    sch.set_scope(s, "local")
    (r,) = sch.get_loops(s)
    ro, ri = sch.split(r, [None, threads2])
    sch.reorder(ri, ro)
    sch.bind(ri, "threadIdx.x")
    return sch
