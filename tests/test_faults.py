"""probsched.testing.faults: the injected faults are real in machine code (LLVM removes none of
them) and the isolated runner meets each as its kind; unannotated programs are unchanged."""

from __future__ import annotations

import pytest

import probsched as ps
from probsched.codegen.compile import compile_program
from probsched.codegen.passes import PASSES
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import maximum
from probsched.measure import Builder, Runner
from probsched.testing import faults


def relu_with_fault(kind: int, vectorized: bool) -> tuple[ps.Workload, ps.Schedule]:
    """An elementwise kernel, the fault on its inner loop or (when ``vectorized``) on the
    loop around a vectorized one: either way a body that does not change if repeated,
    which LLVM hoists out of a plain repeat loop."""
    wb = WorkloadBuilder("relu")
    a = wb.input("A", (16, 32), "float32")
    i, j = axes("i j")
    wb.compute("B", (i, j), maximum(a[i, j], 0.0))
    wl = wb.build()
    sch = ps.Schedule(wl, seed=0)
    i_loop, j_loop = sch.get_loops(sch.get_block("B"))
    if vectorized:
        sch.vectorize(j_loop)
    sch.annotate(i_loop if vectorized else j_loop, "inject_fault", kind)
    return wl, sch


def test_programs_without_the_annotation_are_unchanged():
    sch = ps.Schedule(ps.workloads.gmm(b=1, n=8, m=8, k=8), seed=0)
    sch.annotate(sch.get_loops(sch.get_block("C"))[1], "inject_fault", 0)
    assert faults.inject_faults(sch.program) == sch.program


@pytest.mark.parametrize("vectorized", [False, True])
def test_a_hang_survives_llvm_when_the_body_is_loop_invariant(vectorized):
    _, sch = relu_with_fault(faults.HANG, vectorized)
    kernel = compile_program(sch.program, keep_text=True, passes=PASSES + faults.PASSES)
    assert str(faults.SPIN) in kernel.ir  # the repeat loop is in the optimized IR


def test_each_fault_is_what_the_isolated_runner_reports():
    with Builder(passes=faults.PASSES) as builder, Runner(timeout_s=1.0) as runner:
        for kind, error_kind in [(0, None), (faults.CRASH, "crash"), (faults.HANG, "timeout"),
                                 (faults.WRONG, "wrong")]:
            wl, sch = relu_with_fault(kind, vectorized=True)
            built = builder.build(sch.program)
            assert built.ok
            assert runner.run(built.artifact, wl).error_kind == error_kind
