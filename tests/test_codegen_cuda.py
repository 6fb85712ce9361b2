"""The cuda target's codegen: kernel plans (launch, races, cooperative copies, barriers),
their emulation on the CPU against the numpy reference, NVVM IR and PTX (golden), and
ptxas's acceptance where it is installed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from gpu_schedules import gpu_matmul

import probsched as ps
from probsched.codegen import ptxas
from probsched.codegen.gpu_emulate import Emulator, emulate
from probsched.codegen.gpu_nodes import KBarrier, KLoop, KThread
from probsched.codegen.gpu_plan import plan_kernel
from probsched.codegen.nvptx import build_cuda, lower_cuda
from probsched.codegen.passes import apply_passes
from probsched.errors import CodegenError
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.target import cuda_target
from probsched.workloads import gmm

needs_ptxas = pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
SM90 = cuda_target("sm_90")


def assert_emulated_matches(sch: ps.Schedule) -> None:
    inputs = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, inputs), reference(sch.workload, *inputs))
    assert ok, f"{msg}\n{sch.program}"


def plan_text(plan) -> str:
    """The plan's body, one node a line (what emission walks)."""
    lines = [f"grid {plan.grid} block {plan.block} shared "
             f"{[(a.name, a.offset_bytes, a.nbytes) for a in plan.shared]} "
             f"dynamic {plan.dynamic_shared} local {list(plan.local)}"]

    def walk(nodes, depth):
        pad = "  " * depth
        for n in nodes:
            if isinstance(n, KBarrier):
                lines.append(f"{pad}barrier  # {n.why}")
            elif isinstance(n, KThread):
                lines.append(f"{pad}{n.var} = {n.axis.value} (extent {n.extent})")
                walk(n.body, depth + 1)
            elif isinstance(n, KLoop):
                lines.append(f"{pad}for {n.var} in {n.kind.value}({n.extent}):")
                walk(n.body, depth + 1)
            elif hasattr(n, "loops"):
                shown = ", ".join(f"{v}<{e}" for v, e in n.loops)
                lines.append(f"{pad}cooperative {n.block.name} over {shown or 'one point'}")
            else:
                pred = f" where {n.block.predicate}" if n.block.predicate is not None else ""
                lines.append(f"{pad}block {n.block.name}{pred}")

    walk(plan.body, 1)
    return "\n".join(lines)


# ---------------------------------------------------------------- plans


def test_the_matmul_plan_has_cooperative_copies_and_two_barriers(golden):
    sch = gpu_matmul()
    plan = plan_kernel(apply_passes(sch.program), SM90)
    assert plan.grid == (2, 2, 1) and plan.block == (8, 8, 1)
    golden(plan_text(plan))


def test_a_narrower_thread_loop_guards_its_blocks_not_the_barriers(golden):
    # Two sibling nests bind threadIdx.x with 16 and 8: the launch is 16, the 8 is guarded.
    sch = ps.Schedule(gmm(b=1, n=16, m=16, k=8), target="cuda")
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    sch.bind(i, "blockIdx.x")
    sch.bind(j, "threadIdx.x")
    a = sch.cache_read(c, "A", "shared")
    sch.compute_at(a, i)
    sch.bind(sch.get_loops(a)[-1], "threadIdx.x")  # the row of A: 8 threads of the 16
    plan = plan_kernel(apply_passes(sch.program), SM90)
    golden(plan_text(plan))
    assert_emulated_matches(sch)


# ---------------------------------------------------------------- emulation


@pytest.mark.parametrize("shape", [
    dict(n=16, m=16, k=16, ty=2, ri=4, tx=4, rj=2, kt=4),
    dict(n=20, m=12, k=10, ty=2, ri=3, tx=2, rj=3, kt=4),  # partial tiles everywhere
])
def test_the_emulated_matmul_matches_the_reference(shape):
    assert_emulated_matches(gpu_matmul(**shape))


def _without_barriers(nodes, drop):
    out = []
    for n in nodes:
        if isinstance(n, KBarrier):
            if drop(n):
                continue
        elif isinstance(n, KLoop | KThread):
            n = replace(n, body=tuple(_without_barriers(n.body, drop)))
        out.append(n)
    return tuple(out)


@pytest.mark.parametrize("which", ["written", "read"])
def test_the_emulator_catches_a_missing_barrier(which):
    # Without the barrier after the copies, a thread reads elements another has not written
    # yet, and that one's write comes after the read; without the one before them, a
    # thread overwrites elements another still reads.
    sch = gpu_matmul(n=16, m=16, k=16, ty=2, ri=4, tx=4, rj=2, kt=4)
    plan = plan_kernel(apply_passes(sch.program), SM90)
    body = _without_barriers(plan.body, lambda b: b.why.split(", then ")[0].endswith(which))
    assert body != plan.body
    with pytest.raises(CodegenError, match=r"[AB]_shared\[.*which thread .* (wrote|used) "
                       "since the last barrier"):
        Emulator(replace(plan, body=body)).run(random_inputs(sch.workload))


# ---------------------------------------------------------------- refusals


def test_an_unbound_program_is_refused():
    sch = ps.Schedule(gmm(b=1, n=64, m=64, k=64), target="cuda")
    with pytest.raises(CodegenError, match=r"no loop of program gmm is bound .* loop i "
                       r"\(extent 64\) serially on one thread"):
        build_cuda(sch.program)


def test_a_write_every_thread_makes_is_refused():
    sch = ps.Schedule(gmm(b=1, n=64, m=64, k=4), target="cuda")
    _, i, j, k = sch.get_loops(sch.get_block("C"))
    sch.bind(i, "blockIdx.x")
    a = sch.cache_read(sch.get_block("C"), "A", "shared")
    sch.compute_at(a, i)
    sch.bind(sch.get_loops(a)[-1], "threadIdx.x")  # 4 threads fill A's row ...
    with pytest.raises(CodegenError, match="block C writes C at the same elements in every "
                       "thread along threadIdx.x"):  # ... and each would compute all of C's
        build_cuda(sch.program)


def test_a_cpu_loop_kind_is_refused():
    sch = gpu_matmul()
    sch.parallel(sch.get_loops(sch.get_block("C_init"))[-1])
    with pytest.raises(CodegenError, match="loop j_2_init is parallel, a CPU loop kind"):
        build_cuda(sch.program)


def test_a_vectorized_loop_outside_a_cooperative_copy_is_refused():
    sch = gpu_matmul()
    sch.vectorize(sch.get_loops(sch.get_block("C"))[-1])
    with pytest.raises(CodegenError, match="loop j_2 is vectorized; on the cuda target only the "
                       "innermost loop of a cooperative copy"):
        build_cuda(sch.program)


def _vector_copies(sch: ps.Schedule, width: int = 4) -> None:
    for name in ("A_shared", "B_shared"):
        _, lanes = sch.split(sch.get_loops(sch.get_block(name))[-1], [None, width])
        sch.vectorize(lanes)


def test_vectorized_copies_make_16_byte_accesses():
    sch = gpu_matmul()
    _vector_copies(sch)
    plan = plan_kernel(apply_passes(sch.program), SM90)
    assert "cooperative A_shared over ax0_1<1, ax1_1<32, ax2_1_0<2, ax2_1_1<4" in plan_text(plan)
    ptx = build_cuda(sch.program, SM90, run_ptxas=False).ptx
    assert "ld.global.nc.v4" in ptx and "st.shared.v4" in ptx
    small = gpu_matmul(n=16, m=16, k=16, ty=2, ri=4, tx=4, rj=2, kt=8)
    _vector_copies(small)
    assert_emulated_matches(small)


def test_a_vector_access_over_16_bytes_is_refused():
    sch = gpu_matmul()
    _vector_copies(sch, width=8)
    with pytest.raises(CodegenError, match="vectorized over 8 elements; a GPU vector access is "
                       "at most 16 bytes"):
        build_cuda(sch.program)


def test_a_shared_buffer_across_two_kernels_is_refused():
    sch = ps.Schedule(gmm(b=1, n=8, m=8, k=4), target="cuda")
    sch.cache_read(sch.get_block("C"), "A", "shared")
    with pytest.raises(CodegenError, match="shared buffer A_shared is used by kernels 1 and 2 "
                       r"of program gmm .*blocks A_shared and C_init, C\); it lives in one kernel"):
        build_cuda(sch.program)


# ---------------------------------------------------------------- NVVM IR and PTX


def test_the_nvvm_ir_of_a_small_matmul(golden):
    sch = gpu_matmul()
    ir_text, _, sig = lower_cuda(sch.program, SM90)
    assert [a.name for a in sig.args] == ["A", "B", "C"]
    golden(ir_text)


def test_the_ptx_of_a_small_matmul(golden):
    kernel = build_cuda(gpu_matmul().program, SM90, run_ptxas=False)
    assert kernel.entry == "gmm" and kernel.grid == (2, 2, 1) and kernel.block == (8, 8, 1)
    golden(kernel.ptx)
    ptx = kernel.ptx
    assert ".entry gmm(" in ptx and "bar.sync" in ptx
    assert "ld.global.nc" in ptx and "ld.shared" in ptx and "st.shared" in ptx
    assert "fma.rn.f32" in ptx


@needs_ptxas
def test_ptxas_accepts_the_small_matmul_and_reports_its_resources():
    kernel = build_cuda(gpu_matmul().program, SM90)
    assert kernel.cubin is not None and kernel.cubin[:4] == b"\x7fELF"
    assert kernel.ptxas is not None
    assert 0 < kernel.ptxas.registers <= 255
    assert kernel.ptxas.static_shared_bytes == 2 * 32 * 8 * 4
    assert kernel.ptxas.spill_store_bytes == 0 and kernel.dynamic_shared_bytes == 0


@needs_ptxas
def test_a_kernel_keeping_its_register_tile_in_local_memory_is_refused_when_built():
    # 16 x 16 accumulators per thread: more than the registers, so the tile is a stack array
    sch = gpu_matmul(n=256, m=256, k=64, ty=2, ri=16, tx=2, rj=16, kt=8)
    with pytest.raises(CodegenError, match=r"kernel gmm keeps 1024 bytes per thread in local "
                       r"memory \(0 of spill stores, a 1024-byte stack frame; .*use smaller "
                       r"register tiles"):
        build_cuda(sch.program, SM90)
    kernel = build_cuda(sch.program, SM90, max_local_bytes=None)  # no limit: built
    assert kernel.ptxas is not None and kernel.ptxas.stack_bytes == 1024


def test_a_register_tile_index_cancels_through_divisions():
    """A block's ``n // 28`` in the index and in the tile's start cancel (opaque terms), so the
    register tile is indexed by constants: a C2D tile's index once kept it in local memory."""
    from probsched.ir import expr as E
    from probsched.ir.analysis import difference as _difference
    from probsched.ir.printer import format_expr

    f, t, i = E.Var("f"), E.Var("t"), E.Var("i")
    index = E.binary("+", E.binary("*", E.binary("+", E.binary("*", E.binary("//", f, 28), 4),
                                                 t), 8), i)
    start = E.binary("+", E.binary("*", E.binary("//", f, 28), 32), E.binary("*", t, 8))
    assert format_expr(_difference(index, start)) == "i"
    assert format_expr(_difference(E.binary("%", f, 28), E.Const(0))) == "f % 28"


@needs_ptxas
def test_shared_memory_above_48_kb_is_dynamic():
    # 128 x 64 of A and 64 x 128 of B: 64 KB, over the static limit.
    sch = gpu_matmul(n=256, m=256, k=128, ty=16, ri=8, tx=16, rj=8, kt=64)
    kernel = build_cuda(sch.program, SM90)
    assert kernel.dynamic_shared_bytes == 2 * 128 * 64 * 4
    assert "external .shared" in kernel.ptx or ".extern .shared" in kernel.ptx
    assert kernel.ptxas is not None and kernel.ptxas.static_shared_bytes == 0


def test_the_emulation_and_numpy_agree_on_random_inputs_of_fixed_seed():
    sch = gpu_matmul(n=16, m=16, k=8, ty=2, ri=4, tx=4, rj=2, kt=4)
    a = np.random.default_rng(1).standard_normal((1, 16, 8)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((1, 8, 16)).astype(np.float32)
    (c,) = emulate(sch.program, [a, b])
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the example space


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cuda_matmul.sched"


@needs_ptxas
def test_ptxas_accepts_20_sampled_schedules_of_the_cuda_matmul_space_at_1024():
    mod = ps.load(EXAMPLE)
    wl, space = mod.workload(), mod.space()
    seen = set()
    too_many_registers = 0
    for seed in range(20):
        sch = ps.Schedule(wl, seed=seed, target="cuda")
        space.apply(sch)
        try:
            kernel = build_cuda(sch.program, SM90)
        except CodegenError as exc:  # the one refusal after ptxas ran: it could not launch
            assert "registers per thread" in str(exc), (seed, str(exc))
            too_many_registers += 1
            continue
        report = kernel.ptxas
        assert kernel.cubin and report is not None, f"seed {seed}"
        assert 0 < report.registers <= 255 and report.stack_bytes == 0, (seed, report)
        gx, gy, _ = kernel.grid
        bx, by, _ = kernel.block
        # The launch covers C: block tile x grid = 1024 on each axis.
        rows = 1024 // gy
        assert rows % by == 0 and 1024 % (gx * bx) == 0
        assert report.static_shared_bytes > 0 and kernel.dynamic_shared_bytes == 0
        seen.add((kernel.grid, kernel.block))
    assert len(seen) > 10 and too_many_registers <= 4  # the space has real variety


def test_check_runs_a_cuda_space_for_the_cuda_target():
    mod = ps.load(EXAMPLE)
    mod.check(target="cuda")
    with pytest.raises(ps.ProbschedError, match="cuda_matmul.sched:.*bind.*the target is not "
                       "a GPU"):
        mod.check()


def test_a_shared_accumulator_is_written_back_cooperatively_after_a_barrier(golden):
    sch = ps.Schedule(gmm(b=1, n=16, m=16, k=8), target="cuda")
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    i0, i1, i2 = sch.split(i, [None, 4, 2])
    j0, j1, j2 = sch.split(j, [None, 4, 2])
    sch.reorder(i0, j0, i1, j1, k, i2, j2)
    sch.bind(i0, "blockIdx.y")
    sch.bind(j0, "blockIdx.x")
    sch.bind(i1, "threadIdx.y")
    sch.bind(j1, "threadIdx.x")
    wb = sch.cache_write(c, "shared")
    sch.reverse_compute_at(wb, j0)  # the block's 8 x 8 tile, copied out by all 16 threads
    golden(plan_text(plan_kernel(apply_passes(sch.program), SM90)))
    assert_emulated_matches(sch)


def test_a_local_copy_of_a_row_per_thread_matches():
    sch = ps.Schedule(gmm(b=1, n=16, m=16, k=8), target="cuda")
    c = sch.get_block("C")
    _, i, j, k = sch.get_loops(c)
    sch.bind(i, "blockIdx.x")
    sch.bind(j, "threadIdx.x")
    a = sch.cache_read(c, "A", "local")
    sch.compute_at(a, j)  # each thread its own copy of A's row: no race, no barrier
    plan = plan_kernel(apply_passes(sch.program), SM90)
    assert plan.local == ("A_local",) and "barrier" not in plan_text(plan)
    assert_emulated_matches(sch)


@pytest.mark.parametrize("shape", [dict(n=20, m=36, k=12), dict(n=7, m=9, k=5),
                                   dict(n=32, m=16, k=17)])
@pytest.mark.parametrize("seed", [1, 4])
def test_sampled_kernels_of_the_space_at_odd_shapes_match_the_reference(shape, seed):
    # Shapes no tile divides: partial tiles, guarded cooperative copies, idle threads.
    mod = ps.load(EXAMPLE)
    sch = ps.Schedule(mod.workload(**shape), seed=seed, target="cuda")
    mod.space().apply(sch)
    assert_emulated_matches(sch)


ELEMENTWISE = """
workload scale(n = 37, m = 29):
    input A: float32[n, m]
    input S: float32[m]
    B[i, j] = exp(A[i, j]) * S[j] + 1.0
"""


def test_an_elementwise_op_fused_and_bound_over_the_grid():
    # Fused loops split over blocks of 64 threads: a partial last block, // and % indices.
    mod = ps.parse(ELEMENTWISE)
    sch = ps.Schedule(mod.workload(), target="cuda")
    i, j = sch.get_loops(sch.get_block("B"))
    bx, tx = sch.split(sch.fuse(i, j), [None, 64])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    assert_emulated_matches(sch)
    kernel = build_cuda(sch.program, SM90, run_ptxas=ptxas.available())
    assert kernel.grid == (17, 1, 1) and kernel.block == (64, 1, 1)  # ceil(37 * 29 / 64)
    assert kernel.ptx.count("ld.global.nc") == 2 and "setp" in kernel.ptx  # the guard


@needs_ptxas
def test_a_kernel_needing_more_registers_than_a_block_has_is_refused_when_built():
    # 32 x 32 threads with an 8 x 8 register tile each: over 64 registers a thread
    sch = gpu_matmul(n=256, m=256, k=64, ty=32, ri=8, tx=32, rj=8, kt=8)
    with pytest.raises(CodegenError, match=r"1024 threads need \d+ of the 65536 a block has"):
        build_cuda(sch.program, "sm_90")


@pytest.mark.parametrize("shape", [dict(n=64, m=64, k=32), dict(n=32, m=48, k=40)])
def test_double_buffered_tiles_match_the_reference(shape):
    sch = gpu_matmul(**shape, ty=4, ri=2, tx=8, rj=2, kt=8, double_buffer=True)
    _, plan, _ = lower_cuda(sch.program, SM90)
    (kthread,) = plan.body
    loops = [n for n in kthread.body[0].body if isinstance(n, KLoop) and n.var == "k_0"]
    prologue, steady = loops
    assert prologue.extent == 1 and steady.extent == shape["k"] // 8
    kinds = [type(n).__name__ for n in steady.body]
    assert kinds == ["KPrefetch", "KPrefetch", "KLoop", "KBarrier", "KPrefetch", "KPrefetch",
                     "KBarrier"]
    assert {b.name for b in plan.program.buffers} >= {"A_shared_db", "B_shared_db"}
    x = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, x, SM90), reference(sch.workload, *x))
    assert ok, msg
    build_cuda(sch.program, SM90, run_ptxas=ptxas.available())


def test_double_buffering_needs_copies_at_the_top_of_the_loop():
    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    k1 = sch.get_loops(sch.get_block("C"))[6]  # the inner reduce loop: no copies in it
    sch.annotate(k1, "double_buffer", 1)
    with pytest.raises(CodegenError, match="annotated double_buffer but its body does not "
                       "start with cooperative copies"):
        lower_cuda(sch.program, SM90)


def test_an_untaken_select_arm_is_clamped_into_the_compacted_region():
    """A padded convolution reads its shared tile under select(in bounds, tile[h - 1], 0);
    the arm not taken is still loaded, clamped: into the tile's region, not the whole image
    (clamped to row 0 of the image, row h = -1 was one row past a one-row tile on the H200:
    an out-of-bounds shared read)."""
    from probsched.codegen.buffers import BufferPlan, offset_var
    from probsched.codegen.exprs import ExprEmitter
    from probsched.codegen.gpu_emulate import _expr
    from probsched.codegen.irtext import Function, Module
    from probsched.codegen.memory import flat_offset
    from probsched.ir import expr as E
    from probsched.ir.program import lower

    program = lower(gmm(b=1, n=8, m=8, k=8))
    plan = BufferPlan((1, 1, 4), (E.Const(0), E.Var("r"), E.Var("c")), None)
    ex = ExprEmitter(Function("f", ""), Module(), program, {}, {"C": plan})
    index = (E.Const(0), E.Var("r") - 1, E.Var("c") + 6)  # a row above, columns beyond
    off = flat_offset(ex, "C", index, clamp=True)
    off = E.substitute(off, {offset_var("C", 0): E.Const(0), offset_var("C", 1): E.Var("r"),
                             offset_var("C", 2): E.Var("c")})
    value = _expr(off)  # evaluated as the emulator does
    # the tile's last element, inside its 1 x 1 x 4 region, wherever the tile is
    assert {value({"r": r, "c": c}) for r in range(6) for c in range(5)} == {3}
