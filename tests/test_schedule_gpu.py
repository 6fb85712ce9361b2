"""GPU primitives: bind (golden programs, one test per documented refusal) and the shared and
local scopes of cache_read / cache_write."""

from __future__ import annotations

import re

import pytest
from gpu_schedules import gpu_matmul

import probsched as ps
from probsched.errors import CodegenError, ScheduleError
from probsched.ir import storage
from probsched.workloads import gmm


def tiled(n=64, m=64, k=16, bi=4, bj=4, ti=16, tj=16):
    """gmm with i, j split into (block, thread, inner) tiles, in the order
    bi bj ti tj k ii jj: the usual GPU shape."""
    sch = ps.Schedule(gmm(b=1, n=n, m=m, k=k), target="cuda")
    _, i, j, kk = sch.get_loops(sch.get_block("C"))
    i0, i1, i2 = sch.split(i, [bi, ti, None])
    j0, j1, j2 = sch.split(j, [bj, tj, None])
    sch.reorder(i0, j0, i1, j1, kk, i2, j2)
    return sch, (i0, j0, i1, j1, kk, i2, j2)


def test_bind_blocks_and_threads(golden):
    sch, (i0, j0, i1, j1, *_) = tiled()
    sch.bind(i0, "blockIdx.y")
    sch.bind(j0, "blockIdx.x")
    sch.bind(i1, "threadIdx.y")
    sch.bind(j1, "threadIdx.x")
    golden(f"trace:\n{sch.trace}\n\nprogram:\n{sch.program}")


def test_bind_vthread_prints():
    sch, (i0, j0, i1, j1, kk, i2, j2) = tiled()
    sch.bind(i2, "vthread")
    assert "for i_2 in vthread(1):" in str(sch.program)


def test_bind_replays_from_the_trace():
    sch, (i0, j0, i1, j1, *_) = tiled()
    sch.bind(i0, "blockIdx.x")
    sch.bind(i1, "threadIdx.x")
    again = sch.trace.replay(sch.workload, target="cuda")
    assert str(again.program) == str(sch.program)
    assert ps.Trace.from_json(sch.trace.to_json()) == sch.trace


@pytest.mark.parametrize("step, message", [
    (lambda s, L: s.bind(L[0], "blockIdx.w"), "unknown thread axis 'blockIdx.w'"),
    (lambda s, L: s.bind(L[4], "threadIdx.x"), "carries the reduction of block C"),
    (lambda s, L: (s.bind(L[2], "threadIdx.x"), s.bind(L[3], "threadIdx.x")),
     "loop i_1 is bound to threadIdx.x already, outside loop j_1"),
    (lambda s, L: (s.bind(L[3], "threadIdx.x"), s.bind(L[2], "threadIdx.x")),
     "loop j_1 is bound to threadIdx.x already, inside loop i_1"),
    (lambda s, L: s.bind(L[1], "blockIdx.x"), "inside loop i_0 (serial); blockIdx loops"),
    (lambda s, L: (s.bind(L[0], "threadIdx.x"), s.bind(L[1], "blockIdx.x")),
     "loop j_0 is inside loop i_0 (threadIdx.x); blockIdx loops must be outermost"),
    (lambda s, L: (s.bind(L[0], "blockIdx.x"), s.bind(L[0], "blockIdx.y")),
     "loop i_0 is blockIdx.x already"),
])
def test_bind_refusals(step, message):
    sch, loops = tiled()
    with pytest.raises(ScheduleError, match="bind\\(") as err:
        step(sch, loops)
    assert message in str(err.value)


def test_bind_refuses_a_thread_loop_around_a_block_loop():
    sch, (i0, j0, *_) = tiled(bi=1)
    sch.bind(j0, "blockIdx.x")  # i_0 runs once: j_0 is outermost in effect
    with pytest.raises(ScheduleError, match="loop j_0 .blockIdx. would be inside threadIdx.x "
                       "loop i_0"):
        sch.bind(i0, "threadIdx.x")


def test_bind_refuses_more_than_1024_threads():
    sch, (i0, j0, i1, j1, *_) = tiled(n=128, m=128, ti=32, tj=64)
    sch.bind(i1, "threadIdx.y")
    before = str(sch.program)
    with pytest.raises(ScheduleError, match=r"2048 threads per block \(threadIdx.x=64 \(j_1\), "
                       r"threadIdx.y=32 \(i_1\)\); the device allows at most 1024"):
        sch.bind(j1, "threadIdx.x")
    assert str(sch.program) == before  # a refused step changes nothing


def test_bind_refuses_a_block_dimension_over_the_limit():
    sch = ps.Schedule(gmm(b=1, n=128, m=4, k=2), target="cuda")
    _, i, j, k = sch.get_loops(sch.get_block("C"))
    with pytest.raises(ScheduleError, match="threadIdx.z would be 128 .* at most 64"):
        sch.bind(i, "threadIdx.z")


def test_bind_refuses_a_race_on_a_write():
    # A copy of A computed per j: its block writes the same elements for every j.
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=4), target="cuda")
    a = sch.cache_read(sch.get_block("C"), "A", "global")
    _, _, j, _ = sch.get_loops(sch.get_block("C"))
    sch.compute_at(a, j)
    with pytest.raises(ScheduleError, match="block A_global writes A_global at the same "
                       "elements in every iteration of loop j; bound to threadIdx.x they "
                       "would race"):
        sch.bind(j, "threadIdx.x")


def test_bind_needs_a_cuda_target():
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=4))
    _, i, _, _ = sch.get_loops(sch.get_block("C"))
    with pytest.raises(ScheduleError, match="the target is not a GPU"):
        sch.bind(i, "threadIdx.x")


def test_the_cpu_codegen_refuses_a_bound_program():
    sch, (i0, *_) = tiled()
    sch.bind(i0, "blockIdx.x")
    with pytest.raises(CodegenError, match="loop i_0 is bound to blockIdx.x.*target='cuda'"):
        ps.compile(sch.program)


# ---------------------------------------------------------------- shared and local scopes


def test_a_shared_copy_under_thread_loops_covers_the_whole_block(golden):
    sch = gpu_matmul()
    # A_shared: the block's 32 rows by the 8 columns of one reduction step, not one thread's.
    assert storage.shared_bytes(sch.program) == {"A_shared": 32 * 8 * 4, "B_shared": 8 * 32 * 4}
    golden(f"trace:\n{sch.trace}\n\nprogram:\n{sch.program}")


def test_shared_needs_a_cuda_target():
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=4))
    with pytest.raises(ScheduleError, match="cache_read.*shared memory is a GPU's"):
        sch.cache_read(sch.get_block("C"), "A", "shared")
    with pytest.raises(ScheduleError, match="cache_write.*shared memory is a GPU's"):
        sch.cache_write(sch.get_block("C"), "shared")


def test_shared_memory_over_the_device_limit_is_refused():
    # A: 256 x 128 floats (128 KB) fits; with B's 128 x 256 (128 KB) it is 256 KB > 227 KB.
    sch = ps.Schedule(gmm(b=1, n=512, m=512, k=256), target="cuda")
    c = sch.get_block("C")
    _, i, j, kk = sch.get_loops(c)
    i0, i1, i2 = sch.split(i, [None, 16, 16])
    j0, j1, j2 = sch.split(j, [None, 16, 16])
    k0, k1 = sch.split(kk, [None, 128])
    sch.reorder(i0, j0, i1, j1, k0, k1, i2, j2)
    sch.bind(i0, "blockIdx.y")
    sch.bind(j0, "blockIdx.x")
    sch.bind(i1, "threadIdx.y")
    sch.bind(j1, "threadIdx.x")
    a = sch.cache_read(c, "A", "shared")
    sch.compute_at(a, k0)
    b = sch.cache_read(c, "B", "shared")
    before = str(sch.program)
    with pytest.raises(ScheduleError, match=r"compute_at\(.*shared memory per block would be "
                       r"262144 bytes \(A_shared 131072 B \+ B_shared 131072 B\); sm_90 allows "
                       r"at most 232448 \(227 KB, dynamic above 48 KB\)"):
        sch.compute_at(b, k0)
    assert str(sch.program) == before


def test_gpu_queries_read_the_cuda_target():
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=4), target="cuda")
    assert (sch.warp_size(), sch.max_threads_per_block(), sch.max_shared_bytes()) == (
        32, 1024, 227 * 1024)
    with pytest.raises(ScheduleError, match="warp_size\\(\\): not a GPU target"):
        ps.Schedule(gmm(b=1, n=8, m=8, k=4)).warp_size()
    mod = ps.parse('workload w():\n    input A: float32[4]\n    B[i] = A[i] * 2.0\n'
                   'space s for w:\n    t = max_threads_per_block() // warp_size()\n'
                   '    i = get_loops(get_block("B"))[0]\n'
                   '    if t == 32:\n        bind(i, "threadIdx.x")\n')
    sch = ps.Schedule(mod.workload(), target="cuda")
    mod.space().apply(sch)
    assert "for i in threadIdx.x(4):" in str(sch.program)


def test_storage_align_pads_a_shared_tile_and_the_kernel_stays_correct():
    from probsched.codegen.gpu_emulate import emulate
    from probsched.codegen.nvptx import lower_cuda
    from probsched.ir.reference import check_outputs, random_inputs, reference
    from probsched.target import cuda_target

    sm90 = cuda_target("sm_90")
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    plain = lower_cuda(sch.program, sm90)[1].shared_bytes
    for name in ("A_shared", "B_shared"):
        sch.storage_align(sch.get_block(name), -2, 32, 4)
    assert "shared A_shared: float32[1, 32, 16] align(axis=1, factor=32, offset=4)" in str(
        sch.program)
    _, plan, _ = lower_cuda(sch.program, sm90)
    assert plan.plans["A_shared"].strides[-2] % 32 == 4 and plan.shared_bytes > plain
    x = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, x), reference(sch.workload, *x))
    assert ok, msg
    assert str(sch.trace.replay(sch.workload, target="cuda").program) == str(sch.program)


def test_the_kernel_addresses_a_padded_tile_by_its_padded_strides():
    """The kernel's own address arithmetic, not only the emulator's, follows storage_align:
    the tiles' accesses indexed relative to their starts once dropped the padding (writes
    and reads still agreed with each other here, but C2D candidates whose copy and compute
    loops differ computed garbage on the device)."""
    from probsched.codegen.nvptx import lower_cuda
    from probsched.target import cuda_target

    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    for name in ("A_shared", "B_shared"):
        sch.storage_align(sch.get_block(name), -2, 32, 4)
    ir, plan, _ = lower_cuda(sch.program, cuda_target("sm_90"))
    assert plan.plans["A_shared"].strides == (288, 36, 1)  # region (1, 8, 8), rows padded
    multipliers = set(re.findall(r"mul i64 %[\w.]+, (\d+)", ir))
    assert {"288", "36"} <= multipliers and "64" not in multipliers, sorted(multipliers)


@pytest.mark.parametrize(("block", "args", "match"), [
    ("A_shared", (-1, 32, 4), "has no stride to pad"),
    ("A_shared", (0, 32, 40), "0 <= offset < factor"),
    ("C", (0, 32, 4), "storage_align pads a shared buffer"),
])
def test_storage_align_refuses(block, args, match):
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    with pytest.raises(ps.ScheduleError, match=match):
        sch.storage_align(sch.get_block(block), *args)


def test_transform_layout_transposes_a_shared_tile_and_the_kernel_stays_correct():
    """A's tile stored k-major: the copy keeps its loops (reads along A's rows) and stores
    permuted, the compute reads it permuted; padded after; the kernel right on the emulator,
    its threads' A reads become 16-byte vector loads (two per k instead of eight scalars)."""
    from probsched.codegen.gpu_emulate import emulate
    from probsched.codegen.nvptx import lower_cuda, ptx_of
    from probsched.ir.reference import check_outputs, random_inputs, reference
    from probsched.target import cuda_target

    sm90 = cuda_target("sm_90")
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=8, tx=8, rj=4, kt=8)
    c, a = sch.get_block("C"), sch.get_block("A_shared")
    assert sch.spatial_last_order(c, "A_shared") == [0, 2, 1]
    assert sch.spatial_last_order(c, "B_shared") == []
    sch.transform_layout(a, [0, 2, 1])
    sch.storage_align(a, -2, 32, 4)
    text = str(sch.program)
    assert "shared A_shared: float32[1, 16, 32] align(axis=1, factor=32, offset=4)" in text
    assert "A_shared[v0, v2, v1] = A[v0, v1, v2]" in text  # the copy: its loops as they were
    assert "A_shared[b, k, i] * B_shared[b, k, j]" in text
    x = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, x), reference(sch.workload, *x))
    assert ok, msg
    assert str(sch.trace.replay(sch.workload, target="cuda").program) == text
    for loop in sch.get_loops(sch.get_block("C"))[-2:]:  # the thread's register tile
        sch.unroll(loop)
    ptx = ptx_of(lower_cuda(sch.program, sm90)[0], sm90)
    assert ptx.count("ld.shared.v4") == 3 and "ld.shared.b32" not in ptx  # A twice, B once


@pytest.mark.parametrize(("block", "order", "match"), [
    ("A_shared", [0, 1], "is not an order of the 3 axes"),
    ("A_shared", [0, 1, 1], "is not an order of the 3 axes"),
    ("C_wb", [0, 2, 1], "only an intermediate's layout can change"),
])
def test_transform_layout_refuses(block, order, match):
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    with pytest.raises(ps.ScheduleError, match=match):
        sch.transform_layout(sch.get_block(block), order)


def test_transform_layout_comes_before_storage_align():
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    a = sch.get_block("A_shared")
    sch.storage_align(a, -2, 32, 4)
    with pytest.raises(ps.ScheduleError, match="padded already"):
        sch.transform_layout(a, [0, 2, 1])


def test_transform_layout_on_the_cpu_computes_the_same():
    sch = ps.Schedule(gmm(b=1, n=16, m=24, k=8))
    c = sch.get_block("C")
    a = sch.cache_read(c, "A", "global")
    sch.compute_at(a, sch.get_loops(c)[1])
    sch.transform_layout(a, [2, 0, 1])
    assert ps.measure(sch.program, sch.workload).correct
