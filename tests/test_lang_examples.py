"""Every .sched example parses, runs at small shapes, compiles and matches the reference; its
traces round-trip (as text and as JSON) to identical programs."""

from pathlib import Path

import numpy as np
import pytest

import probsched as ps
from probsched.codegen.gpu_emulate import emulate
from probsched.lang import format_trace_space

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL = {
    "matmul.sched": dict(n=32, m=64, k=24),
    "conv2d.sched": dict(h=12, w=10, ci=3, co=32, kernel=3, stride=2, pad=1),
    "softmax.sched": dict(n=8, m=48),
    "custom_rules.sched": dict(n=32, m=64, k=24),
    "cuda_matmul.sched": dict(n=16, m=24, k=8),
}
# Spaces for the cuda target: scheduled for it, checked by emulating the kernel on the CPU.
CUDA = {"cuda_matmul.sched"}


def test_every_example_has_small_shapes():
    assert sorted(p.name for p in EXAMPLES.glob("*.sched")) == sorted(SMALL)
    for lib in EXAMPLES.glob("rules/*.sched"):
        ps.load(lib)


def _check_correct(sch: ps.Schedule) -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, t.shape).astype(t.dtype) for t in sch.workload.inputs]
    if sch.target.kind == "cuda":
        outs = emulate(sch.program, inputs, sch.target)
    else:
        outs = ps.compile(sch)(*inputs)
    refs = ps.reference(sch.workload, *inputs)
    for out, ref in zip(outs, refs, strict=True):
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_example(name):
    mod = ps.load(EXAMPLES / name)
    wl = mod.workload(**SMALL[name])
    space = mod.space()
    target = "cuda" if name in CUDA else None
    for seed in range(2):
        sch = ps.Schedule(wl, seed=seed, target=target)
        decisions = space.apply(sch)
        _check_correct(sch)
        # the trace as text: a space that reproduces trace and program
        text = format_trace_space(sch.trace, wl.name)
        again = ps.Schedule(wl, seed=seed + 50, target=target)
        ps.parse(text, "trace.sched").space().apply(again)
        assert again.trace.same_steps(sch.trace) and str(again.program) == str(sch.program)
        # the trace as JSON
        back = ps.Trace.from_json(sch.trace.to_json())
        assert str(back.replay(wl, target=target).program) == str(sch.program)
        # the decisions by address replay the run
        same = ps.Schedule(wl, seed=seed + 99, target=target)
        assert space.apply(same, decisions) == decisions and same.trace == sch.trace


def test_softmax_branches_both_compile():
    mod = ps.load(EXAMPLES / "softmax.sched")
    wl = mod.workload(**SMALL["softmax.sched"])
    sch = ps.Schedule(wl, seed=0)
    decisions = mod.space().apply(sch)
    (address,) = decisions
    for choice in (0, 1):
        sch = ps.Schedule(wl, seed=0)
        mod.space().apply(sch, {address: choice})
        assert ("compute_inline" in str(sch.trace)) == (choice == 1)
        _check_correct(sch)
