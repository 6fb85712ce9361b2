"""Hypothesis strategies for property tests of schedules: small suite workloads, random legal
schedules of them, and traces of running a space.

Use them in your own tests (needs ``hypothesis``, the ``test`` extra)::

    from hypothesis import given
    import probsched as ps
    from probsched.ir.reference import check_outputs, random_inputs
    from probsched.testing import schedules, traces, workloads

    @given(schedules(workloads()))
    def test_my_schedules_compute_the_same(sch):
        inputs = random_inputs(sch.workload)
        outs = ps.compile(sch)(*inputs)
        ok, _, msg = check_outputs(outs, ps.reference(sch.workload, *inputs))
        assert ok, msg

    @given(traces(my_space, ps.workloads.gmm(b=1, n=32, m=32, k=32)))
    def test_my_space_replays(trace): ...

``spaces()`` (from :mod:`probsched.lang.strategies`) draws random well-formed `.sched` spaces.

Every example is reproducible from hypothesis's draws alone: the schedule's seed is drawn, and
so is every step and its arguments; a step that the schedule refuses (``ScheduleError``) is
dropped, which leaves the schedule unchanged. Shapes are small, so compiling stays cheap.

>>> from hypothesis import given, settings
>>> @settings(max_examples=10)
... @given(schedules(workloads(["GMM", "SFM"]), max_steps=3))
... def replays_to_the_same_program(sch):
...     assert sch.trace.replay(sch.workload).program == sch.program
>>> replays_to_the_same_program()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from ..errors import ScheduleError
from ..ir.compute import Workload
from ..lang.strategies import spaces
from ..schedule import Schedule, Trace
from ..workloads import SUITE
from .steps import STEPS, apply_step

__all__ = ["shapes", "schedules", "spaces", "traces", "workloads"]

SEEDS = st.integers(0, 2**32 - 1)

# ---------------------------------------------------------------- workloads


@st.composite
def _conv_shape(draw, spatial: int, *, depthwise: bool = False) -> dict:
    """A small convolution: kernel, stride and pad first, then input extents it fits."""
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, kernel // 2))
    low = max(1, kernel - 2 * pad)
    dims = ["l"] if spatial == 1 else ["h", "w"]
    shape = {d: draw(st.integers(low, 9)) for d in dims}
    shape.update(n=1, kernel=kernel, stride=stride, pad=pad)
    if depthwise:
        shape["c"] = draw(st.integers(1, 5))
    else:
        shape["ci"] = draw(st.integers(1, 3))
        shape["co"] = draw(st.integers(1, 6))
    return shape


_SIZE = st.integers(1, 24)

# Suite name -> strategy of keyword arguments for its builder (small: compiles stay cheap).
_SHAPES: dict[str, st.SearchStrategy[dict]] = {
    "GMM": st.fixed_dictionaries(
        {"b": st.integers(1, 2), "n": _SIZE, "m": _SIZE, "k": _SIZE}),
    "C1D": _conv_shape(1),
    "C2D": _conv_shape(2),
    "DEP": _conv_shape(2, depthwise=True),
    "NRM": st.fixed_dictionaries({"n": _SIZE, "m": _SIZE}),
    "SFM": st.fixed_dictionaries({"n": _SIZE, "m": _SIZE}),
    "CBR": _conv_shape(2),
}


def shapes(name: str) -> st.SearchStrategy[dict]:
    """Small random shapes (builder keyword arguments) of the suite operator ``name``."""
    if name not in _SHAPES:
        raise ValueError(f"unknown suite operator {name!r}; known: {', '.join(sorted(SUITE))}")
    return _SHAPES[name]


def workloads(names: Sequence[str] | None = None) -> st.SearchStrategy[Workload]:
    """Small instances of the suite operators (``probsched.workloads.SUITE``) with random
    shapes; ``names`` restricts the operators (default: all of them)."""
    names = sorted(SUITE) if names is None else list(names)
    for name in names:
        shapes(name)  # validates the name
    return st.sampled_from(names).flatmap(
        lambda name: shapes(name).map(lambda kw: SUITE[name][0](**kw)))


def schedules(
    workload: Workload | st.SearchStrategy[Workload] | None = None,
    *,
    max_steps: int = 6,
    steps: Sequence[str] | None = None,
) -> st.SearchStrategy[Schedule]:
    """Schedules of ``workload`` (a workload or a strategy of them; default
    :func:`workloads`) after up to ``max_steps`` random legal steps with random decisions.

    Steps (``STEPS``; ``steps`` restricts them): splits by sampled perfect tiles (2 or 3
    tiles) and by fixed factors (often not dividing: guarded partial tiles), reorder, fuse,
    parallel on an outer spatial loop, vectorize an innermost spatial loop, unroll a short
    loop, annotate, and the caching, compute-location, inlining and reduction primitives. A
    step the schedule refuses is dropped.
    """
    names = list(STEPS) if steps is None else list(steps)
    unknown = [n for n in names if n not in STEPS]
    if unknown or not names:
        raise ValueError(f"unknown steps {unknown}; known: {', '.join(STEPS)}")
    source = workloads() if workload is None else workload
    if isinstance(source, Workload):
        source = st.just(source)

    @st.composite
    def build(draw) -> Schedule:
        sch = Schedule(draw(source), seed=draw(SEEDS))
        for _ in range(draw(st.integers(0, max_steps))):
            apply_step(draw, sch, draw(st.sampled_from(names)))
        return sch

    return build()


# ---------------------------------------------------------------- traces


def traces(space: Callable[[Schedule], Any] | Any, workload: Workload,
           seeds: st.SearchStrategy[int] = SEEDS) -> st.SearchStrategy[Trace]:
    """Traces of running ``space`` on a fresh schedule of ``workload`` with a random seed.

    ``space`` is anything taking a Schedule: a Python function or an object with an
    ``apply(sch)`` method (a ``.sched`` space). A run that the schedule refuses
    (``ScheduleError``) is rejected, as a search would reject it.
    """
    apply = space.apply if hasattr(space, "apply") else space
    if not callable(apply):
        raise TypeError(f"a space is a callable taking a Schedule, got {space!r}")

    def run(seed: int) -> Trace:
        sch = Schedule(workload, seed=seed)
        try:
            apply(sch)
        except ScheduleError:
            reject()
        return sch.trace

    return seeds.map(run)
