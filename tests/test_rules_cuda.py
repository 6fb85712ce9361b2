"""The generated space on a cuda target (probsched/rules/cuda.sched): sampled kernels of the
suite's one-nest operators, at small shapes, built to PTX (and cubins where ptxas is) and
emulated on the CPU against the reference. Softmax's row reductions are cross-thread
reductions; a norm to one number is two kernels (partial sums per thread block, then one
block reducing them)."""

from __future__ import annotations

import pytest

import probsched as ps
from probsched.codegen import ptxas
from probsched.codegen.gpu_emulate import emulate
from probsched.codegen.nvptx import build_cuda
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.lang import generated_space
from probsched.workloads.suite import SUITE

ONE_NEST = ["GMM", "C1D", "C2D", "DEP", "CBR", "SFM", "NRM"]


@pytest.mark.parametrize("op", ONE_NEST)
def test_generated_cuda_kernels_are_correct(op):
    make, _, small = SUITE[op]
    wl = make(**small)
    for seed in range(2):
        sch = ps.Schedule(wl, seed=seed, target="cuda")
        generated_space().apply(sch)
        text = str(sch.program)
        assert "blockIdx" in text and "threadIdx" in text and "parallel" not in text
        kernel = build_cuda(sch.program, "cuda")
        if ptxas.available():
            assert kernel.cubin and kernel.ptxas is not None
            assert kernel.ptxas.spill_store_bytes == 0
        x = random_inputs(wl)
        ok, _, msg = check_outputs(emulate(sch.program, x), reference(wl, *x))
        assert ok, f"{op} seed {seed}: {msg}\n{sch.program}"


def test_matmul_tiles_use_shared_memory_and_registers():
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=256, m=256, k=256), seed=0, target="cuda")
    generated_space().apply(sch)
    text = str(sch.program)
    assert "shared A_shared" in text and "shared B_shared" in text and "local C_local" in text


def test_softmax_reduces_its_rows_across_threads():
    sch = ps.Schedule(ps.workloads.sfm(n=8, m=300), seed=0, target="cuda")
    generated_space().apply(sch)
    text = str(sch.program)
    assert "local M" in text and "local S" in text and text.count("threadIdx.x") == 3
    assert "blockIdx.x(8)" in text


def test_a_norm_is_two_kernels():
    sch = ps.Schedule(ps.workloads.nrm(n=256, m=256), seed=2, target="cuda")
    generated_space().apply(sch)
    kernel = build_cuda(sch.program, "cuda", run_ptxas=False)
    (first, second) = kernel.launches
    assert first.grid[0] > 1 and second.grid == (1, 1, 1)
    assert [w.name for w in kernel.workspace] == ["S_rf"]


def test_the_cpu_target_keeps_the_cpu_rules():
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), seed=1)
    generated_space().apply(sch)
    assert "parallel" in str(sch.program) and "blockIdx" not in str(sch.program)


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["C2D", "CBR", "GMM", "DEP"])
def test_generated_kernels_compute_right_on_the_device(op):
    """Twelve sampled kernels of the generated space, run on the device: each one that builds
    is correct. The emulator alone missed padded tiles addressed without their padding (half
    of the C2D candidates on the H200 computed garbage)."""
    from probsched.errors import CodegenError
    from probsched.measure import cuda

    why = cuda.unavailable()
    if why is not None:
        pytest.skip(f"no GPU here: {why}")
    make, _, small = SUITE[op]
    wl = make(**small)
    target = cuda.device_target()
    wrong = []
    with cuda.CudaRunner() as runner:
        for seed in range(12):
            sch = ps.Schedule(wl, seed=seed, target=target)
            generated_space().apply(sch)
            try:
                kernel = build_cuda(sch.program, target)
            except CodegenError:
                continue  # refused when built (registers, double buffering): not run
            r = runner.run(kernel, wl)
            if not r.ok:
                wrong.append(f"seed {seed}: {r.error_kind} {r.error}")
    assert not wrong, "\n".join(wrong)
