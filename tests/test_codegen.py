"""Codegen: compiled programs (untransformed and hand-scheduled) match the numpy reference."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from probsched.codegen import compile_program, lower_program
from probsched.driver.bench.programs import register_tile_matmul, set_kind, tiled_matmul
from probsched.errors import CodegenError
from probsched.ir import lower
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import all_of, exp, reduce_max, select
from probsched.ir.program import LoopKind as K
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.target import host
from probsched.workloads import SUITE, gmm


def assert_matches(workload, program, seed=0, **kw):
    kernel = compile_program(program, **kw)
    inputs = random_inputs(workload, seed=seed)
    outs = kernel(*inputs)
    ok, err, msg = check_outputs(outs, reference(workload, *inputs))
    assert ok, f"{msg} (max abs err {err})\n{program}"
    return kernel


@pytest.mark.parametrize("name", sorted(SUITE))
def test_untransformed_suite_operator_matches_reference(name):
    builder, _, small = SUITE[name]
    wl = builder(**small)
    assert_matches(wl, lower(wl))


@pytest.mark.parametrize(
    "shape,tiles,kinds",
    [
        ((16, 24, 20), (4, 8), {}),
        ((17, 23, 9), (4, 8), {"ji": K.VECTORIZED}),  # partial tiles on both axes: masks
        ((17, 23, 9), (4, 8), {"ji": K.VECTORIZED, "ii": K.UNROLLED, "io": K.PARALLEL}),
        ((32, 48, 16), (4, 16), {"ji": K.VECTORIZED, "ii": K.UNROLLED, "io": K.PARALLEL}),
        ((10, 7, 5), (3, 3), {"ii": K.PARALLEL, "jo": K.UNROLLED}),  # parallel inside
        ((9, 40, 3), (2, 40), {"ji": K.VECTORIZED, "kk": K.UNROLLED}),  # 40 lanes
    ],
)
def test_hand_scheduled_gmm_matches_reference(shape, tiles, kinds):
    wl, prog = tiled_matmul(*shape, *tiles, kinds)
    assert_matches(wl, prog)


def test_vectorized_loop_emits_vector_instructions():
    wl, prog = tiled_matmul(16, 32, 8, 4, 16, {"ji": K.VECTORIZED})
    ir = lower_program(prog, host()).ir
    assert f"<{host().vector_lanes()} x float>" in ir  # 16 lanes run as native-width vectors
    assert "llvm.masked" not in ir  # no partial tile, so no masks


def test_vectorized_reduction_axis_combines_lanes():
    wl = gmm(b=1, n=5, m=3, k=32)
    prog = set_kind(lower(wl), "k", K.VECTORIZED)
    assert "llvm.vector.reduce.fadd" in lower_program(prog, host()).ir
    assert_matches(wl, prog)


def test_wide_vector_loop_runs_as_a_loop_over_native_vectors():
    wl = gmm(b=1, n=2, m=128, k=3)
    prog = set_kind(lower(wl), "j", K.VECTORIZED)
    ir = lower_program(prog, host()).ir
    assert f"<{host().vector_lanes()} x float>" in ir and "llvm.loop.vectorize.enable" not in ir
    assert_matches(wl, prog)


def test_odd_wide_vector_loop_falls_back_to_scalar_loop_with_hint():
    wl = gmm(b=1, n=2, m=3, k=101)
    prog = set_kind(lower(wl), "k", K.VECTORIZED)
    assert_matches(wl, prog)
    assert "llvm.loop.vectorize.enable" in lower_program(prog, host()).ir


def padded_workload(h=6, c=8, pad=2):
    wb = WorkloadBuilder("pad")
    X = wb.input("X", (h, c))
    i, ch = axes("i c")
    inside = all_of(i >= pad, i < h + pad)
    wb.compute("P", (i, ch), select(inside, X[i - pad, ch], 0.0), shape=(h + 2 * pad, c))
    return wb.build()


@pytest.mark.parametrize("kind_var", [None, "c", "i"])
def test_select_never_reads_out_of_bounds(kind_var):
    wl = padded_workload()
    prog = lower(wl)
    if kind_var:
        prog = set_kind(prog, kind_var, K.VECTORIZED)
    assert_matches(wl, prog)


def test_floor_division_and_modulo_follow_python_on_negative_values():
    wb = WorkloadBuilder("fdiv")
    X = wb.input("X", (12,))
    (i,) = axes("i")
    q = (i - 6) // 4
    r = (i - 6) % 4
    wb.compute("Y", (i,), X[i] + q * 10 + r, shape=(12,))
    wl = wb.build()
    assert_matches(wl, lower(wl))
    assert_matches(wl, set_kind(lower(wl), "i", K.VECTORIZED))


def test_max_reduction_and_exp_vectorized():
    wb = WorkloadBuilder("rowmax")
    X = wb.input("X", (3, 16))
    i, j = axes("i j")
    M = wb.compute("M", (i,), reduce_max(X[i, j]))
    wb.compute("E", (i, j), exp(X[i, j] - M[i]))
    wl = wb.build()
    prog = set_kind(set_kind(lower(wl), "j", K.VECTORIZED), "j_1", K.VECTORIZED)
    assert_matches(wl, prog)


def test_large_intermediate_goes_to_the_heap():
    wb = WorkloadBuilder("big")
    X = wb.input("X", (200, 200))
    i, j = axes("i j")
    T = wb.compute("T", (i, j), X[i, j] * 2.0)
    wb.compute("Y", (i, j), T[i, j] + 1.0)
    wl = wb.build()
    assert "@malloc" in lower_program(lower(wl), host()).ir
    assert_matches(wl, lower(wl))


def test_ir_and_assembly_are_retrievable():
    wl = gmm(b=1, n=4, m=4, k=4)
    kernel = compile_program(lower(wl), keep_text=True)
    assert "define" in kernel.ir and "ret" in kernel.asm


def test_parallel_loop_runs_on_two_os_threads():
    """libgomp starts its worker thread on the first parallel region: the process's thread
    count grows by exactly the extra thread (a deterministic check, no timing)."""
    code = textwrap.dedent(
        """
        import os
        from probsched.codegen import compile_program
        from probsched.ir import lower
        from probsched.ir.program import LoopKind
        from probsched.ir.reference import random_inputs
        from probsched.workloads import gmm
        from probsched.driver.bench.programs import set_kind
        wl = gmm(b=1, n=64, m=64, k=64)
        kernel = compile_program(set_kind(lower(wl), "i", LoopKind.PARALLEL))
        inputs = random_inputs(wl)
        before = len(os.listdir("/proc/self/task"))
        kernel(*inputs)
        after = len(os.listdir("/proc/self/task"))
        print(before, after)
        """
    )
    path = os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1", PYTHONPATH=path)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    before, after = map(int, out.stdout.split())
    assert after == before + 1, out.stdout


def test_invalid_ir_is_a_codegen_error():
    from probsched.codegen.machine import optimize

    with pytest.raises(CodegenError, match="invalid"):
        optimize("define void @f() { ret i32 0 }", host())


def test_local_accumulator_becomes_registers():
    wl, prog = register_tile_matmul()
    kernel = assert_matches(wl, prog, keep_text=True)
    assert "local acc: float32[16, 32]" in str(prog)  # compacted to 4 x 16 by codegen
    allocas = [line for line in kernel.ir.splitlines() if "alloca" in line]
    assert not [a for a in allocas if "buf.acc" in a]  # promoted to registers by SROA
    assert "vfmadd" in kernel.asm


@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_other_dtypes(dtype):
    wb = WorkloadBuilder("typed")
    X = wb.input("X", (5, 7), dtype)
    Y = wb.input("Y", (7,), dtype)
    i, j = axes("i j")
    S = wb.compute("S", (i,), reduce_max(X[i, j] * Y[j]))
    wb.compute("Z", (i, j), X[i, j] - S[i])
    wl = wb.build()
    assert_matches(wl, lower(wl))
    assert_matches(wl, set_kind(lower(wl), "j_1", K.VECTORIZED))


def test_reduction_init_is_hoisted_before_the_outermost_reduce_loop(golden):
    from probsched.codegen.passes import apply_passes
    from probsched.ir.reduction import init_hoist_loop

    prog = lower(gmm(b=1, n=2, m=3, k=4))
    assert init_hoist_loop(prog, "C") == "k"  # b, i, j feed spatial bindings: not before them
    golden(str(apply_passes(prog)))
    _, tiled = tiled_matmul(4, 8, 4, 2, 4, {})
    assert init_hoist_loop(tiled, "C") is None  # kk encloses spatial loops ii, ji
    assert apply_passes(tiled) == tiled  # the init stays, tested for the first iteration


@pytest.mark.parametrize(("m", "lanes", "contiguous"), [(256, 64, True), (24, 8, True),
                                                          (12, 8, False), (20, 16, False)])
def test_fused_index_lanes_load_contiguously_when_they_stay_in_one_row(m, lanes, contiguous):
    # sum of squares over a fused (i, j) loop, partial sums over `lanes` vector lanes: lane
    # indices (k * lanes + v) // m and % m are one row and consecutive columns when m is a
    # multiple of the lanes; otherwise lanes straddle rows and must be gathered.
    import probsched as ps

    wl = ps.workloads.nrm(n=8, m=m)
    sch = ps.Schedule(wl, seed=0)
    i, j = sch.get_loops(sch.get_block("S"))
    outer, inner = sch.split(sch.fuse(i, j), [None, lanes])
    partial = sch.rfactor(inner, -1)
    sch.vectorize(sch.get_loops(partial)[-1])
    kernel = assert_matches(wl, sch.program, keep_text=True)
    gathered = "extractelement <8 x ptr>" in kernel.ir or "gather" in kernel.ir
    assert gathered != contiguous


def test_a_bound_call_keeps_its_kernel_alive():
    import gc

    wl = gmm(b=1, n=8, m=8, k=8)
    kernel = compile_program(lower(wl))
    arrays = [np.asarray(x) for x in random_inputs(wl)] + [np.zeros((1, 8, 8), np.float32)]
    call = kernel.bind(*arrays)
    del kernel
    gc.collect()
    for _ in range(3):  # code freed under it would crash or compute garbage
        compile_program(lower(gmm(b=1, n=16, m=16, k=16)))
    call()
    np.testing.assert_allclose(arrays[2], arrays[0] @ arrays[1], rtol=1e-5, atol=1e-5)
