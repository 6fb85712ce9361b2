"""The GPU runner (probsched.measure.cuda): kernels checked against the reference, timed by
CUDA events, and a faulting kernel costing only its worker. The tests that need a device are
marked ``gpu`` and skip, with the reason, where there is none (CI); the first runs anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cuda_kernels import scale_kernel

import probsched as ps
from probsched.errors import MeasureError
from probsched.measure import cuda
from probsched.target import CudaTarget, cuda_target

WHY = cuda.unavailable()
needs_gpu = pytest.mark.skipif(WHY is not None, reason=f"no GPU here: {WHY}")

N = 1 << 20


def _workload(n: int = N):
    return ps.parse(f"workload scale(n = {n}):\n    input A: float32[n]\n"
                    "    B[i] = A[i] * 2.0\n").workload()


def test_without_a_device_the_runner_says_why():
    if WHY is None:
        pytest.skip("a device is here")
    with pytest.raises(MeasureError, match="cannot read a CUDA device: "):
        cuda.device_target()
    with cuda.CudaRunner() as runner, pytest.raises(MeasureError, match="cannot be measured "
                                                    "on the GPU: .*cannot run CUDA kernels"):
        runner.run(scale_kernel(cuda_target(), N), _workload())


@pytest.mark.gpu
@needs_gpu
def test_the_device_is_read_into_a_target():
    t = cuda.device_target()
    assert isinstance(t, CudaTarget) and t.arch.startswith("sm_") and t.warp_size == 32
    assert t.max_threads_per_block == 1024 and t.sm_count > 0 and t.l2_bytes > 0
    assert t.shared_bytes_optin >= t.shared_bytes_per_block == 48 * 1024


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("flush_l2", [False, True])
def test_a_kernel_is_checked_then_timed_by_events(flush_l2):
    target = cuda.device_target()
    with cuda.CudaRunner(flush_l2=flush_l2) as runner:
        r = runner.run(scale_kernel(target, N), _workload())
    assert r.ok and r.correct and r.max_abs_err == 0.0, r.error
    assert len(r.runs_s) >= 5 and 0 < r.min_s <= r.latency_s < 1e-2


@pytest.mark.gpu
@needs_gpu
def test_a_candidate_slower_than_the_bar_is_timed_twice_only():
    target = cuda.device_target()
    with cuda.CudaRunner() as runner:
        slow = runner.run(scale_kernel(target, N), _workload(), slow_s=1e-9)
        fast = runner.run(scale_kernel(target, N), _workload(), slow_s=10.0)
    assert slow.ok and slow.correct and len(slow.runs_s) == 2
    assert fast.ok and len(fast.runs_s) >= 5


@pytest.mark.gpu
@needs_gpu
def test_wrong_faulting_and_refused_kernels_are_recorded_and_the_runner_goes_on():
    target = cuda.device_target()
    wl = _workload()
    with cuda.CudaRunner() as runner:
        wrong = runner.run(scale_kernel(target, N, factor=3.0, entry="wrong"), wl)
        assert wrong.error_kind == "wrong" and not wrong.correct
        first_pid = runner.worker.pid
        fault = runner.run(scale_kernel(target, N, offset=1 << 34, entry="oob"), wl)
        assert fault.error_kind == "crash" and cuda.CONTEXT_LOST in (fault.error or "")
        assert "CUDA_ERROR_ILLEGAL_ADDRESS" in (fault.error or "")
        bad = scale_kernel(target, N, entry="refused")
        refused = runner.run(ps_replace(bad, cubin=b"not a cubin"), wl)
        assert refused.error_kind == "error" and "driver refused kernel" in (refused.error or "")
        good = runner.run(scale_kernel(target, N), wl)
        assert good.ok and good.correct, good.error
        assert runner.worker.pid != first_pid  # the fault cost its worker, not the run


def ps_replace(kernel, **changes):
    from dataclasses import replace

    return replace(kernel, **changes)


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cuda_matmul.sched"
# The example's space, and in about a third of its samples a write-back that stores 2**47
# bytes past C (probsched.testing.faults, kind 4): an illegal address on the device.
FAULTY = EXAMPLE.read_text() + (
    '    if sample_categorical([0, 1], [0.65, 0.35]) == 1:\n'
    '        annotate(get_loops(get_block("C_wb"))[-2], "inject_fault", 4)\n')


@pytest.mark.gpu
@needs_gpu
def test_a_tuning_run_on_the_gpu_goes_on_past_faulting_kernels(tmp_path):
    from probsched.measure import Builder
    from probsched.search.database import Database
    from probsched.testing import faults

    target = cuda.device_target()
    mod = ps.parse(FAULTY, filename="faulty.sched")
    wl = mod.workload(n=512, m=512, k=512)
    db = tmp_path / "runs.db"
    with Builder(workers=4, target=target, passes=faults.PASSES) as builder:
        res = ps.tune(wl, mod.space("tiled"), trials=24, db=str(db), builder=builder,
                      target=target, progress=False, reference=False, seed=3)
    with Database(db) as d:
        records = [r for r in d.records(wl, target=target.key) if not r.repeat]
    assert len(records) == 24 and res.trials == 24
    crashed = [r for r in records if r.error_kind == "crash"]
    good = [r for r in records if r.ok]
    assert crashed and all("CUDA_ERROR_ILLEGAL_ADDRESS" in (r.error or "") for r in crashed)
    assert good and len(good) + len(crashed) == 24  # nothing else failed
    assert res.best_latency_s < math.inf and res.best_trace is not None
    assert "inject_fault" not in str(res.best_trace.replay(wl, target=target).program)


@pytest.mark.parametrize("name", ["cuda", "cuda-ops", "cuda-4096"])
def test_the_gpu_benches_say_why_without_a_device(name):
    from probsched.driver.bench import run_suite
    from probsched.errors import ProbschedError

    if WHY is None:
        pytest.skip("a device is here")
    with pytest.raises(ProbschedError, match=f"bench --suite {name} needs a CUDA device: "):
        run_suite(name)
