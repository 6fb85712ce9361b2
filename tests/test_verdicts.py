"""Verdicts follow what float32 can do: a correct kernel of a long reduction passes (NRM over
a million terms was judged wrong by a fixed relative tolerance), and real bugs fail — faults
planted in every suite operator, at small shapes here and at the suite's shapes in the slow
profile, are caught wherever they move the result beyond float32's resolution."""

from __future__ import annotations

import numpy as np
import pytest

import probsched as ps
from probsched.ir import lower
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.ir.rounding import error_bounds, growth, tolerance
from probsched.rules import generated_space
from probsched.testing.wrong import resolvable, wrong_versions
from probsched.workloads import SUITE


def _tolerances(wl, inputs, refs):
    bounds = error_bounds(wl, *inputs)
    return [tolerance(r, b, s.dtype) for r, b, s in zip(refs, bounds, wl.outputs, strict=True)]


def _verdicts(wl) -> dict[str, tuple[bool, bool]]:
    """fault -> (caught, resolvable), each faulty kernel compiled and run for real."""
    inputs = random_inputs(wl)
    refs = reference(wl, *inputs)
    tols = _tolerances(wl, inputs, refs)
    out = {}
    for fault, wrong in wrong_versions(wl).items():
        got = ps.compile(lower(wrong))(*inputs)
        ok, _, _ = check_outputs(got, refs, tolerances=tols)
        exact = reference(wrong, *inputs)
        out[fault] = (not ok, any(resolvable(r, w, t)
                                  for r, w, t in zip(refs, exact, tols, strict=True)))
    return out


def _assert_caught(name, verdicts):
    missed = [f for f, (caught, visible) in verdicts.items() if visible and not caught]
    assert not missed, f"{name}: faults not caught: {missed}"
    assert any(caught for caught, _ in verdicts.values()), f"{name}: nothing caught"


@pytest.mark.parametrize("name", sorted(SUITE))
def test_planted_faults_are_caught_at_small_shapes(name):
    make, _, small = SUITE[name]
    verdicts = _verdicts(make(**small))
    _assert_caught(name, verdicts)
    assert {"missing_term", "shifted_index", "wrong_init"} <= set(verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITE))
def test_planted_faults_are_caught_at_the_suites_shapes(name):
    make, big, _ = SUITE[name]
    _assert_caught(name, _verdicts(make(**big)))


def test_correct_kernels_of_a_million_term_norm_pass():
    """The case that failed: NRM at 1 x 1024 x 1024, sampled schedules of the generated
    space, each checked against the error bounds (a fixed 1e-4 rejected a quarter of them)."""
    wl = ps.workloads.nrm(n=1, m=1024 * 1024)
    inputs = random_inputs(wl)
    refs = reference(wl, *inputs)
    tols = _tolerances(wl, inputs, refs)
    for seed in range(8):
        sch = ps.Schedule(wl, seed=seed)
        generated_space().apply(sch)
        ok, err, msg = check_outputs(ps.compile(sch)(*inputs), refs, tolerances=tols)
        assert ok, f"seed {seed}: {msg}"
    # the sequential accumulation of every term, the worst order, passes too
    (y,) = ps.compile(lower(wl))(*inputs)
    assert check_outputs([y], refs, tolerances=tols)[0]


def test_bounds_grow_with_the_reduction_and_stay_tight_for_elementwise_ops():
    short, long_ = ps.workloads.nrm(n=1, m=64), ps.workloads.nrm(n=1, m=65536)
    rel = []
    for wl in (short, long_):
        inputs = random_inputs(wl)
        (ref,) = reference(wl, *inputs)
        (b,) = error_bounds(wl, *inputs)
        rel.append(float(b) / float(ref))
    assert rel[0] < rel[1] < 0.01
    assert growth(1) == 1.0 and growth(1 << 20) < (1 << 20)
    wb = ps.ir.WorkloadBuilder("scale")
    x = wb.input("X", (8,))
    (i,) = ps.ir.axes("i")
    wb.compute("Y", (i,), x[i] * 3.0 + 1.0)
    wl = wb.build()
    inputs = random_inputs(wl)
    (ref,) = reference(wl, *inputs)
    (b,) = error_bounds(wl, *inputs)
    assert np.all(b <= 3 * 2.0**-24 * (3 * np.abs(inputs[0]) + 1))  # a few ulps
