"""Where each intermediate buffer lives and how much of it exists.

In the Program every buffer has its full logical shape (as in TensorIR before compaction).
Here each intermediate is placed at the innermost loop enclosing all of its accesses (their
lowest common ancestor) and shrunk to the region those accesses touch during one iteration of
that loop: a cache_write accumulator under a tile loop becomes a tile-sized array that SROA
turns into registers, and a padded input computed per tile stays in cache. An intermediate
whose placement is inside a parallel loop is private to each thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import analysis, storage
from ..ir import expr as E
from ..ir.program import LoopKind, Program, Scope, aligned_strides, allocated_elements
from ..ir.storage import common_prefix


@dataclass(frozen=True)
class BufferPlan:
    shape: tuple[int, ...]  # allocated (compacted) shape
    starts: tuple[E.Expr, ...] | None  # per dimension, in loop variables; None: not compacted
    parallel_loop: str | None  # the outermost parallel loop it is private to, if any
    align: tuple[tuple[int, int, int], ...] = ()  # the buffer's storage_align, if any

    @property
    def size(self) -> int:
        """Elements allocated (the padding of an aligned buffer included)."""
        return allocated_elements(self.shape, self.align)

    @property
    def strides(self) -> tuple[int, ...]:
        return aligned_strides(self.shape, self.align)


def offset_var(buffer: str, dim: int) -> str:
    """The name under which codegen binds a compacted buffer's start in one dimension (not a
    valid identifier, so it never meets a program variable)."""
    return f"@off.{buffer}.{dim}"


def plan_buffers(program: Program) -> dict[str, BufferPlan]:
    """A plan for every intermediate (global or local) buffer of ``program``."""
    paths = storage.uses(program)
    plans = {}
    for buf in program.buffers:
        if buf.scope not in (Scope.GLOBAL, Scope.LOCAL) or buf.name not in paths:
            continue
        uses = paths[buf.name]
        common = common_prefix([loops for loops, _ in uses])
        parallel = next((lp.var for lp in common if lp.kind == LoopKind.PARALLEL), None)
        plan = BufferPlan(buf.shape, None, parallel)
        if common and not any(lp.kind == LoopKind.VECTORIZED for lp in common):
            inner = {}
            for loops, _ in uses:
                inner.update({lp.var: lp.extent for lp in loops[len(common):]})
            indices = [idx for _, blk in uses for idx in analysis.accesses(blk, buf.name)]
            reg = analysis.region(indices, inner)
            if reg is not None and math.prod(reg.extents) < buf.size:
                plan = BufferPlan(reg.extents, reg.starts, parallel)
        plans[buf.name] = plan
    return plans


