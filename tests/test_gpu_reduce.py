"""Cross-thread reductions (probsched/codegen/gpu_reduce.py): a reduction whose loop is bound
to threadIdx, each thread reducing into its own local copy, the copies then combined across
the threads. Emulated on the CPU against the reference for each way of combining (shuffles in
a warp, across warps, through a slot per thread); the PTX shows which ran; on a device the
kernels run and are checked."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_schedules import gpu_norm, gpu_softmax

import probsched as ps
from probsched.codegen import gpu_reduce, ptxas
from probsched.codegen.gpu_emulate import emulate
from probsched.codegen.nvptx import build_cuda
from probsched.errors import CodegenError, ScheduleError
from probsched.ir.program import LoopKind
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.measure import cuda

WHY = cuda.unavailable()


@pytest.mark.parametrize(("n", "m", "threads", "how"), [
    (3, 40, 8, "warp"), (4, 64, 32, "warp"), (2, 256, 128, "warps"), (2, 100, 48, "slots"),
])
def test_softmax_rows_reduced_across_threads_match_the_reference(n, m, threads, how):
    sch = gpu_softmax(n, m, threads)
    assert gpu_reduce.strategy(LoopKind.THREAD_X, "float32", (threads, 1, 1)) == how
    x = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, x), reference(sch.workload, *x))
    assert ok, msg
    ptx = build_cuda(sch.program, "cuda", run_ptxas=ptxas.available()).ptx
    assert ("shfl.sync.bfly" in ptx) == (how != "slots")
    assert ("bar.sync" in ptx) == (how != "warp")


def test_a_reduce_loop_bound_to_threads_needs_a_local_buffer():
    sch = ps.Schedule(ps.workloads.sfm(n=4, m=64), target="cuda")
    _, j = sch.get_loops(sch.get_block("M"))
    with pytest.raises(ScheduleError, match=r"would race: set_scope\(M, \"local\"\) first"):
        sch.bind(j, "threadIdx.x")
    with pytest.raises(ScheduleError, match="bind it to a threadIdx axis for a cross-thread"):
        sch.bind(j, "blockIdx.x")


def test_a_serial_loop_around_the_thread_loop_carrying_the_reduction_is_refused():
    sch = gpu_softmax(2, 64, 16, reduce_serial_outside=True)
    with pytest.raises(CodegenError, match="carries the reduction too: reorder"):
        build_cuda(sch.program, "cuda", run_ptxas=False)


def test_set_scope_refuses_an_output():
    sch = ps.Schedule(ps.workloads.sfm(n=4, m=64), target="cuda")
    with pytest.raises(ScheduleError, match="only an intermediate buffer's scope"):
        sch.set_scope(sch.get_block("Y"), "local")


def test_a_norm_runs_as_two_kernels_through_a_global_intermediate():
    sch = gpu_norm()
    kernel = build_cuda(sch.program, "cuda", run_ptxas=ptxas.available())
    assert [(k.entry, k.grid, k.block) for k in kernel.launches] == [
        ("nrm", (16, 1, 1), (32, 1, 1)), ("nrm_k1", (1, 1, 1), (16, 1, 1))]
    assert [(w.name, w.shape) for w in kernel.workspace] == [("S_rf", (16,))]
    x = random_inputs(sch.workload)
    ok, _, msg = check_outputs(emulate(sch.program, x), reference(sch.workload, *x))
    assert ok, msg


def test_a_global_intermediate_read_in_the_kernel_writing_it_is_refused():
    sch = ps.Schedule(ps.workloads.sfm(n=4, m=64), target="cuda")
    i, _ = sch.get_loops(sch.get_block("Y"))
    sch.compute_inline(sch.get_block("E"))
    for b in ("S", "M"):
        sch.compute_at(sch.get_block(b), i)
    sch.bind(i, "blockIdx.x")
    with pytest.raises(CodegenError, match="reads M, a global intermediate written in the "
                       "same loop nest"):
        build_cuda(sch.program, "cuda", run_ptxas=False)


@pytest.mark.gpu
@pytest.mark.skipif(WHY is not None, reason=f"no GPU here: {WHY}")
@pytest.mark.parametrize(("blocks", "threads"), [(16, 32), (256, 256), (100, 96)])
def test_a_two_kernel_norm_runs_correct_on_the_device(blocks, threads):
    sch = gpu_norm(n=1024, m=768, blocks=blocks, threads=threads, threads2=min(blocks, 1024))
    target = cuda.device_target()
    with cuda.CudaRunner() as runner:
        r = runner.run(build_cuda(sch.program, target), sch.workload)
    assert r.ok and r.correct, r.error


@pytest.mark.gpu
@pytest.mark.skipif(WHY is not None, reason=f"no GPU here: {WHY}")
@pytest.mark.parametrize("threads", [32, 256, 48, 1024])
def test_cross_thread_reductions_run_correct_on_the_device(threads):
    sch = gpu_softmax(64, 1000, threads)
    target = cuda.device_target()
    with cuda.CudaRunner() as runner:
        r = runner.run(build_cuda(sch.program, target), sch.workload)
    assert r.ok and r.correct, r.error
    assert np.isfinite(r.latency_s)
