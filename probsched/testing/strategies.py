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
from ..ir import expr as E
from ..ir import tree
from ..ir.compute import Workload
from ..ir.program import Block, LoopKind
from ..lang.strategies import spaces
from ..schedule import Schedule, Trace
from ..workloads import SUITE

__all__ = [
    "STEPS", "apply_step", "code_size", "shapes", "schedules", "spaces", "traces", "workloads",
]

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


# ---------------------------------------------------------------- schedule steps
#
# A step draws its targets from the current program, then calls primitives; any of them may
# raise ScheduleError, and the step is then dropped (the schedule is left as it was by the
# failing call; steps made of several calls may keep their first calls, e.g. a sampling).


def _block(draw, sch: Schedule, pred: Callable[[Block], bool] = lambda b: True):
    blocks = [b for b in sch.program.blocks() if pred(b)]
    if not blocks:
        return None, None
    blk = draw(st.sampled_from(blocks))
    return sch.get_block(blk.name), blk


def _reduce_vars(block: Block) -> set[str]:
    """Loop variables feeding ``block``'s reduce iteration variables."""
    out: set[str] = set()
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        if iv.reduce:
            out |= E.free_vars(b)
    return out


def _loop_of_block(draw, sch: Schedule, which: Callable | None = None):
    """A block, its loop RVs, and one of them (index drawn among ``which(block, vars)``)."""
    rv, blk = _block(draw, sch)
    if rv is None:
        return None
    loops = sch.get_loops(rv)
    if not loops:
        return None
    vars_ = [sch.get(lp) for lp in loops]
    choices = list(range(len(loops))) if which is None else which(blk, vars_)
    if not choices:
        return None
    k = draw(st.sampled_from(choices))
    return rv, blk, loops, k


def _extent(sch: Schedule, loop) -> int:
    return tree.node_at(sch.program, tree.find_loop(sch.program, sch.get(loop))).extent


def _step_sample_split(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch)
    if picked:
        _, _, loops, k = picked
        n = draw(st.integers(2, 3))
        max_inner = draw(st.sampled_from([1, 2, 4, 8, 16]))
        sch.split(loops[k], sch.sample_perfect_tile(loops[k], n, max_inner))


def _step_split(draw, sch: Schedule) -> None:
    """Fixed factors, often not dividing the extent (a guarded partial tile)."""
    picked = _loop_of_block(draw, sch)
    if not picked:
        return
    _, _, loops, k = picked
    extent = _extent(sch, loops[k])
    n = draw(st.integers(2, 3))
    factors: list[int | None] = [draw(st.integers(1, extent + 1)) for _ in range(n)]
    if draw(st.booleans()):
        factors[draw(st.integers(0, n - 1))] = None
    else:  # all given: the outermost just covers the extent (or one more tile)
        inner = 1
        for f in factors[1:]:
            inner *= f
        factors[0] = -(-extent // inner) + draw(st.integers(0, 1))
    sch.split(loops[k], factors)


def _step_reorder(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch)
    if picked and len(picked[2]) >= 2:
        loops = picked[2]
        chosen = draw(st.lists(st.integers(0, len(loops) - 1), min_size=2, max_size=4,
                               unique=True))
        order = draw(st.permutations(chosen))
        sch.reorder(*(loops[k] for k in order))


def _step_fuse(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch)
    if picked and len(picked[2]) >= 2:
        loops = picked[2]
        start = draw(st.integers(0, len(loops) - 2))
        count = draw(st.integers(2, min(3, len(loops) - start)))
        sch.fuse(*loops[start:start + count])


def _spatial(limit: int | None = None, innermost: bool = False):
    """Indices of loops not feeding a reduction: the outer ``limit`` ones or the innermost."""

    def which(blk: Block, vars_: list[str]) -> list[int]:
        red = _reduce_vars(blk)
        ks = [len(vars_) - 1] if innermost else list(range(len(vars_)))[:limit]
        return [k for k in ks if vars_[k] not in red]

    return which


def _step_parallel(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch, _spatial(limit=2))
    if picked:
        sch.parallel(picked[2][picked[3]])


def code_size(program, also: str | None = None) -> int:
    """Block copies the generated code holds: each block once per iteration of the unrolled
    and vectorized loops around it (and of loop ``also``, as if it were unrolled). Steps keep
    it small, so that compiling stays cheap."""
    total = 0

    def visit(nodes, copies: int) -> None:
        nonlocal total
        for node in nodes:
            if isinstance(node, Block):
                total += copies
                continue
            spread = node.kind in (LoopKind.UNROLLED, LoopKind.VECTORIZED) or node.var == also
            visit(node.body, copies * node.extent if spread else copies)

    visit(program.body, 1)
    return total


MAX_CODE_SIZE = 64


def _spread(draw, sch: Schedule, which, max_extent: int):
    """A loop (RV) that may be unrolled or vectorized without making the code too big."""
    picked = _loop_of_block(draw, sch, which)
    if not picked:
        return None
    loop = picked[2][picked[3]]
    if _extent(sch, loop) > max_extent or code_size(sch.program, sch.get(loop)) > MAX_CODE_SIZE:
        return None
    return loop


def _step_vectorize(draw, sch: Schedule) -> None:
    loop = _spread(draw, sch, _spatial(innermost=True), 32)
    if loop is not None:
        sch.vectorize(loop)


def _step_unroll(draw, sch: Schedule) -> None:
    loop = _spread(draw, sch, None, 8)
    if loop is not None:
        sch.unroll(loop)


def _step_annotate(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch)
    if not picked:
        return
    loop = picked[2][picked[3]]
    if draw(st.booleans()):
        value = sch.sample_categorical([0, 4, 16], [0.25, 0.25, 0.5])
        sch.annotate(loop, "pragma_auto_unroll_max_step", value)
    else:
        sch.annotate(loop, "note", draw(st.sampled_from(["hot", "cold"])))


_SCOPES = st.sampled_from(["local", "global"])


def _step_cache_write(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch)
    if rv is not None:
        sch.cache_write(rv, draw(_SCOPES))


def _step_cache_read(draw, sch: Schedule) -> None:
    rv, blk = _block(draw, sch)
    if rv is not None:
        reads = sorted({ld.tensor for ld in E.loads(blk.body.value)} - {blk.body.buffer})
        if reads:
            sch.cache_read(rv, draw(st.sampled_from(reads)), draw(_SCOPES))


def _loop_of(draw, sch: Schedule, blocks) -> Any:
    """A loop around one of ``blocks`` (block RVs), or None."""
    if not blocks:
        return None
    loops = sch.get_loops(draw(st.sampled_from(blocks)))
    return draw(st.sampled_from(loops)) if loops else None


def _step_compute_at(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch)
    if rv is None:
        return
    if draw(st.booleans()):
        sch.compute_at(rv, sch.sample_compute_location(rv))
        return
    loop = _loop_of(draw, sch, sch.get_consumers(rv))
    if loop is not None:
        sch.compute_at(rv, loop)


def _step_reverse_compute_at(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch)
    if rv is not None:
        loop = _loop_of(draw, sch, sch.get_producers(rv))
        if loop is not None:
            sch.reverse_compute_at(rv, loop)


def _step_compute_inline(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch, lambda b: b.body.buffer not in sch.program.outputs)
    if rv is not None:
        sch.compute_inline(rv)


def _step_reverse_compute_inline(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch, lambda b: b.reduction is None)
    if rv is not None:
        sch.reverse_compute_inline(rv)


def _step_decompose_reduction(draw, sch: Schedule) -> None:
    rv, _ = _block(draw, sch, lambda b: b.init is not None)
    if rv is not None:
        loops = sch.get_loops(rv)
        if loops:
            sch.decompose_reduction(rv, draw(st.sampled_from(loops)))


def _step_rfactor(draw, sch: Schedule) -> None:
    picked = _loop_of_block(draw, sch, lambda blk, vs: [
        k for k, v in enumerate(vs) if v in _reduce_vars(blk)])
    if picked:
        sch.rfactor(picked[2][picked[3]], 0)


# Step name -> step; the simplest first (hypothesis shrinks towards them).
STEPS: dict[str, Callable] = {
    "annotate": _step_annotate,
    "unroll": _step_unroll,
    "split": _step_split,
    "sample_split": _step_sample_split,
    "reorder": _step_reorder,
    "fuse": _step_fuse,
    "parallel": _step_parallel,
    "vectorize": _step_vectorize,
    "cache_write": _step_cache_write,
    "cache_read": _step_cache_read,
    "compute_at": _step_compute_at,
    "reverse_compute_at": _step_reverse_compute_at,
    "compute_inline": _step_compute_inline,
    "reverse_compute_inline": _step_reverse_compute_inline,
    "decompose_reduction": _step_decompose_reduction,
    "rfactor": _step_rfactor,
}
"""The steps :func:`schedules` draws from, by name."""


def apply_step(draw, sch: Schedule, name: str) -> bool:
    """Try step ``name`` on ``sch`` with arguments from ``draw``; False if it was refused."""
    try:
        STEPS[name](draw, sch)
    except ScheduleError:
        return False
    return True


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
