"""Builder and runner: failures of every kind become failed records, and the pools keep working.

Planted kernels are hand-written LLVM IR with the signature of gmm(1, 32, 32, 32):
``void @gmm(ptr A, ptr B, ptr C)``. No test asserts on timings.
"""

import operator
import os
import signal
import time

import pytest
import threadpoolctl

from probsched.codegen import LoweredKernel, build, lower_program
from probsched.ir import lower
from probsched.measure import Builder, Runner, Worker, measure, measure_many, runner_overhead
from probsched.target import host
from probsched.workloads import gmm

WL = gmm(b=1, n=32, m=32, k=32)
SIG = lower_program(lower(WL), host()).signature

SEGFAULT = """
define void @gmm(ptr %A, ptr %B, ptr %C) {
entry:
  store volatile i32 1, ptr inttoptr (i64 16 to ptr), align 4
  ret void
}
"""

HANG = """
define void @gmm(ptr %A, ptr %B, ptr %C) {
entry:
  br label %loop
loop:
  %v = load volatile float, ptr %A, align 4
  br label %loop
}
"""

WRONG = """
define void @gmm(ptr %A, ptr %B, ptr %C) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %next, %loop ]
  %p = getelementptr inbounds float, ptr %C, i64 %i
  store float 1.0, ptr %p, align 4
  %next = add i64 %i, 1
  %more = icmp slt i64 %next, 1024
  br i1 %more, label %loop, label %done
done:
  ret void
}
"""

NOTHING = """
define void @gmm(ptr %A, ptr %B, ptr %C) {
entry:
  ret void
}
"""

INVALID = """
define void @gmm(ptr %A, ptr %B, ptr %C) {
entry:
  this is not LLVM IR
}
"""


def planted(ir: str) -> LoweredKernel:
    return LoweredKernel(ir, SIG)


@pytest.fixture(scope="module")
def builder():
    with Builder(workers=2, timeout_s=20.0) as b:
        yield b


@pytest.fixture(scope="module")
def runner():
    with Runner(timeout_s=1.0, min_time_s=0.005, max_repeats=20) as r:
        yield r


def assert_good(result):
    assert result.ok, result.error
    assert result.correct and result.error_kind is None
    assert 0 < result.min_s <= result.latency_s < 1
    assert len(result.runs_s) >= 3
    assert result.max_abs_err < 1e-3


def run_planted(builder, runner, ir):
    built = builder.build(planted(ir))
    assert built.ok, built.error
    return runner.run(built.artifact, WL)


def test_correct_kernel(builder, runner):
    assert_good(measure(lower(WL), WL, builder=builder, runner=runner))


def test_segfault_is_a_crash_and_the_runner_recovers(builder, runner):
    res = run_planted(builder, runner, SEGFAULT)
    assert not res.correct and res.error_kind == "crash"
    assert res.error in ("crashed: SIGSEGV", "crashed: SIGBUS", "crashed: SIGILL")
    assert_good(measure(lower(WL), WL, builder=builder, runner=runner))


def test_hang_is_a_timeout_and_the_runner_recovers(builder, runner):
    t = time.perf_counter()
    res = run_planted(builder, runner, HANG)
    assert time.perf_counter() - t < 10
    assert res.error_kind == "timeout" and res.error == "timeout after 1 s"
    assert_good(measure(lower(WL), WL, builder=builder, runner=runner))


def test_wrong_values(builder, runner):
    res = run_planted(builder, runner, WRONG)
    assert res.error_kind == "wrong" and not res.correct
    assert "max abs error" in res.error and res.max_abs_err > 0.1
    assert res.runs_s == ()  # wrong code is never timed


def test_output_not_written(builder, runner):
    res = run_planted(builder, runner, NOTHING)
    assert res.error_kind == "wrong"
    assert "not written" in res.error


def test_signature_mismatch_is_an_error(builder, runner):
    built = builder.build(lower(gmm(b=1, n=16, m=16, k=16)))
    res = runner.run(built.artifact, WL)
    assert res.error_kind == "error" and "MeasureError" in res.error


def test_build_failure(builder):
    good, bad, good2 = builder.build_many([lower(WL), planted(INVALID), planted(WRONG)])
    assert good.ok and good2.ok
    assert good.artifact.signature == SIG
    assert not bad.ok and bad.artifact is None and bad.error_kind == "error"
    assert "invalid" in bad.error


def test_measure_many_keeps_order_and_reports_build_failures(builder, runner):
    artifact = build(lower(WL))  # in this process: an artifact is run as it is
    results = measure_many([planted(NOTHING), planted(INVALID), artifact, lower(WL)], WL,
                           builder=builder, runner=runner)
    assert [r.error_kind for r in results] == ["wrong", "build", None, None]


def test_a_recycled_worker_keeps_working():
    with Builder(workers=1, recycle_after=2) as b:
        results = [b.build(lower(gmm(b=1, n=8 + i, m=8, k=8))) for i in range(5)]
        assert all(r.ok for r in results), [r.error for r in results]
        assert b.pool[0].starts == 3
    with Runner(timeout_s=5.0, min_time_s=0.0, recycle_after=2, retakes=0) as r:
        artifact = build(lower(WL))
        for _ in range(5):
            assert_good(r.run(artifact, WL))
        assert r.worker.starts == 3


def test_worker_failures_and_restarts():
    with Worker() as w:
        assert w.call(operator.add, 1, 2, timeout_s=30).value == 3
        err = w.call(operator.truediv, 1, 0, timeout_s=30)
        assert err.kind == "error" and "ZeroDivisionError" in err.error
        pid = w.pid
        crash = w.call(os.kill, pid, signal.SIGSEGV, timeout_s=30)
        assert (crash.kind, crash.error) == ("crash", "crashed: SIGSEGV")
        slow = w.call(time.sleep, 30, timeout_s=0.5)
        assert (slow.kind, slow.error) == ("timeout", "timeout after 0.5 s")
        assert w.call(operator.add, 1, 2, timeout_s=30).value == 3
        assert w.pid != pid and w.starts == 3
        # Workers limit BLAS to one thread: spinning OpenBLAS threads ruin timings.
        info = w.call(threadpoolctl.threadpool_info, timeout_s=30).value
        assert all(lib["num_threads"] == 1 for lib in info if lib["user_api"] == "blas")


def test_runner_overhead_reports(builder, runner):
    stats = runner_overhead(WL, builder.build(lower(WL)).artifact, runner, calls=2)
    assert stats["kernel_s"] > 0 and stats["wall_s"] > 0 and stats["repeats"] >= 3


def test_a_loser_is_timed_by_one_warm_run(builder, runner):
    (built,) = builder.build_many([lower(WL)])
    full = runner.run(built.artifact, WL)
    loser = runner.run(built.artifact, WL, slow_s=full.min_s / 1e3)  # "slower than" anything
    assert loser.ok and loser.correct and len(loser.runs_s) == 1
    assert len(runner.run(built.artifact, WL, slow_s=10.0).runs_s) >= 3  # not a loser
