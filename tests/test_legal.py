"""``Schedule.legal`` runs the primitive dry (nothing recorded) and restores the schedule: for
random schedules and random primitive calls on their loops and blocks, its answer is whether
the step succeeds, and the schedule after it is the one before, down to its values."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import probsched as ps
from probsched.errors import ScheduleError
from probsched.schedule import RV
from probsched.testing import schedules

ONE_LOOP = ("parallel", "vectorize", "unroll")
TWO_LOOPS = ("fuse", "reorder")
BLOCK_LOOP = ("compute_at", "reverse_compute_at", "decompose_reduction")
ONE_BLOCK = ("compute_inline", "reverse_compute_inline")


def _state(sch: ps.Schedule) -> tuple:
    values = [(rv, type(v), v) for rv, v in sch._values.items()]
    return sch.program, sch.trace, values, sch._next_rv, sch._alive


@st.composite
def calls(draw):
    sch = draw(schedules(max_steps=4))
    loops = [rv for rv in sch._values if rv.kind == "l"]
    blocks = [rv for rv in sch._values if rv.kind == "b"]
    if not loops:  # look up a live block's loops (the RVs drawn may name removed ones)
        for b in sch.get_blocks():
            blocks.append(b)
            loops = list(sch.get_loops(b))
            if loops:
                break
    kinds = ("loop", "loops", "block loop", "block", "cache", "split") if loops else (
        "block", "cache")
    kind = draw(st.sampled_from(kinds))
    loop = st.sampled_from(loops or [None])
    block = st.sampled_from(blocks)
    if kind == "loop":
        return sch, draw(st.sampled_from(ONE_LOOP)), (draw(loop),)
    if kind == "loops":
        return sch, draw(st.sampled_from(TWO_LOOPS)), (draw(loop), draw(loop))
    if kind == "block loop":
        return sch, draw(st.sampled_from(BLOCK_LOOP)), (draw(block), draw(loop))
    if kind == "block":
        return sch, draw(st.sampled_from(ONE_BLOCK)), (draw(block),)
    if kind == "cache":
        return sch, "cache_write", (draw(block), "local")
    return sch, "split", (draw(loop), [None, draw(st.integers(1, 5))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_legal_answers_whether_the_step_succeeds_and_changes_nothing(call):
    sch, prim, args = call
    before = _state(sch)
    answer = sch.legal(prim, *args)
    assert _state(sch) == before and sch.program is before[0]
    trial = sch.copy()
    try:
        getattr(trial, prim)(*args)
        done = True
    except ScheduleError:
        done = False
    assert answer == done
    if done:  # the real step after the dry one: as if nothing had been tried
        n = len(sch.trace)
        out = getattr(sch, prim)(*args)
        assert str(sch.program) == str(trial.program)
        assert len(sch.trace) == n + 1
        fresh = out if isinstance(out, list) else [out] if isinstance(out, RV) else []
        assert all(rv.id >= before[3] for rv in fresh)
