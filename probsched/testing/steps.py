"""Schedule steps for property tests: each draws its targets from the current program (with
hypothesis's ``draw``), then calls primitives. Any of them may raise ``ScheduleError``, and the
step is then dropped (the schedule is left as it was by the failing call; steps made of
several calls may keep their first calls, e.g. a sampling). :func:`.strategies.schedules`
chains them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from ..errors import ScheduleError
from ..ir import expr as E
from ..ir import tree
from ..ir.program import Block, LoopKind
from ..ir.threads import reduce_vars
from ..schedule import Schedule


def _block(draw, sch: Schedule, pred: Callable[[Block], bool] = lambda b: True):
    blocks = [b for b in sch.program.blocks() if pred(b)]
    if not blocks:
        return None, None
    blk = draw(st.sampled_from(blocks))
    return sch.get_block(blk.name), blk


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
    return tree.loop_at(sch.program, tree.loop_path(sch.program, sch.get(loop))).extent


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
    sizes = [draw(st.integers(1, extent + 1)) for _ in range(n)]
    factors: list[int | None] = list(sizes)
    if draw(st.booleans()):
        factors[draw(st.integers(0, n - 1))] = None
    else:  # all given: the outermost just covers the extent (or one more tile)
        inner = 1
        for f in sizes[1:]:
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
        red = reduce_vars(blk)
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
        k for k, v in enumerate(vs) if v in reduce_vars(blk)])
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
