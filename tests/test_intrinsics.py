"""The tensorize hook (probsched/codegen/intrinsics.py): a loop annotated ``tensorize`` is
emitted by the registered intrinsic, on the CPU and in PTX; what it refuses, or a name not
registered, is a located CodegenError (a failed build for the tuner)."""

from __future__ import annotations

import pytest
from gpu_schedules import gpu_matmul

import probsched as ps
from probsched.codegen import intrinsics, ptxas
from probsched.codegen.compile import build
from probsched.codegen.llvm import lower_program
from probsched.errors import CodegenError
from probsched.measure import Builder
from probsched.target import cuda_target, host
from probsched.testing.tiles import MARK, MARKED


@pytest.fixture
def marked():
    intrinsics.register(MARKED)
    yield MARKED
    intrinsics.unregister(MARKED.name)


def _tensorized(loop_index=-1, name="marked"):
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=16, m=8, k=4))
    loops = sch.get_loops(sch.get_block("C"))
    sch.annotate(loops[loop_index], "tensorize", name)
    return sch, loops


def test_a_tensorized_loop_is_the_intrinsics_code_and_computes_the_same(marked):
    sch, _ = _tensorized()
    ir = lower_program(sch.program, host()).ir
    assert ir.count(f"# {MARK} k") == 1  # one tile: the k loop, entered once per (i, j)
    assert ps.measure(build(sch.program), sch.workload).correct


def test_compile_processes_get_the_intrinsics_from_the_builder():
    sch, _ = _tensorized()
    with Builder(workers=1, intrinsics=(MARKED,)) as builder:
        ok = builder.build(sch.program)
    with Builder(workers=1) as builder:
        missing = builder.build(sch.program)
    assert ok.ok and ps.measure(ok.artifact, sch.workload).correct
    assert not missing.ok and "intrinsic 'marked' (tensorize), which is not registered" in (
        missing.error or "")


def test_an_intrinsic_refuses_a_loop_that_is_not_its_tile(marked):
    sch, _ = _tensorized(loop_index=1)  # the i loop: its body is a loop, not one block
    with pytest.raises(CodegenError, match="loop i is not a tile of intrinsic 'marked': its "
                                           "body is not one block"):
        lower_program(sch.program, host())


def test_an_unregistered_intrinsic_is_named():
    sch, _ = _tensorized(name="mma_tf32")
    with pytest.raises(CodegenError, match="loop k asks for intrinsic 'mma_tf32'"):
        lower_program(sch.program, host())


@pytest.mark.skipif(not ptxas.available(), reason="ptxas is not on the PATH")
def test_the_gpu_emitter_hands_the_tile_over_too(marked):
    from probsched.codegen.nvptx import build_cuda

    sch = gpu_matmul(n=32, m=32, k=16, ty=4, ri=2, tx=8, rj=2, kt=8)
    inner = sch.get_loops(sch.get_block("C"))[-1]  # the thread's register tile's j loop
    sch.annotate(inner, "tensorize", "marked")
    kernel = build_cuda(sch.program, cuda_target("sm_90"))
    assert f"// {MARK}" in kernel.ptx and kernel.cubin  # ptxas took it
