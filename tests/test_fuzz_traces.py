"""Fuzzing at scale (slow profile): 10,000 random traces across the suite at small shapes,
each compiled and run, give no wrong result. Half are random legal schedules (any sequence
of primitives the schedule accepts), half samples of the generated space; each is checked
against the reference with the rounding-error tolerances the runner uses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.ir.reference import check_outputs, random_inputs, reference
from probsched.ir.rounding import error_bounds, tolerance
from probsched.rules import generated_space
from probsched.testing import schedules, workloads
from probsched.workloads import SUITE

PER_OPERATOR = 10_000 // (2 * len(SUITE)) + 1


def _check(sch: ps.Schedule) -> None:
    wl = sch.workload
    inputs = random_inputs(wl)
    refs = reference(wl, *inputs)
    tols = [tolerance(r, b, s.dtype)
            for r, b, s in zip(refs, error_bounds(wl, *inputs), wl.outputs, strict=True)]
    ok, _, msg = check_outputs(ps.compile(sch)(*inputs), refs, tolerances=tols)
    assert ok, f"{msg}\n{sch.program}\n{sch.trace}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITE))
@settings(max_examples=PER_OPERATOR, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_legal_schedules_compute_right(name, data):
    _check(data.draw(schedules(workloads([name]), max_steps=8), label="schedule"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITE))
@settings(max_examples=PER_OPERATOR, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_space_samples_compute_right(name, data):
    wl = data.draw(workloads([name]), label="workload")
    sch = ps.Schedule(wl, seed=data.draw(st.integers(0, 2**31 - 1), label="seed"))
    generated_space().apply(sch)
    _check(sch)
