"""GPU structure of a program: which loops are bound to which axes, and the launch they make.

A loop bound to ``blockIdx.*`` or ``threadIdx.*`` runs its iterations on distinct thread
blocks or threads; the launch has, per axis, the largest extent bound to it (sibling loops may
bind one axis with different extents: the smaller ones are guarded). ``vthread`` loops run in
every thread, interleaved, and launch nothing. Everything here is a plain function of the
program; limits of a device are checked by the callers (schedule and codegen).

>>> from probsched.ir.program import Block, IterVar, Loop, LoopKind, Store
>>> from probsched.ir import expr as E
>>> blk = Block("C", (IterVar("i", 64),), (E.Var("i0") * 32 + E.Var("i1"),),
...             Store("C", (E.Var("i"),), E.Const(0.0)))
>>> nest = Loop("i0", 2, (Loop("i1", 32, (blk,), LoopKind.THREAD_X),), LoopKind.BLOCK_X)
>>> launch_extents((nest,))
{<LoopKind.BLOCK_X: 'blockIdx.x'>: 2, <LoopKind.THREAD_X: 'threadIdx.x'>: 32}
"""

from __future__ import annotations

import math

from . import expr as E
from .program import Block, Loop, LoopKind, Node, Program, Scope, walk

BLOCK_AXES = (LoopKind.BLOCK_X, LoopKind.BLOCK_Y, LoopKind.BLOCK_Z)
THREAD_AXES = (LoopKind.THREAD_X, LoopKind.THREAD_Y, LoopKind.THREAD_Z)
AXIS_NAMES = {k.value: k for k in (*BLOCK_AXES, *THREAD_AXES, LoopKind.VTHREAD)}


def launch_extents(body: tuple[Node, ...]) -> dict[LoopKind, int]:
    """Per block or thread axis bound in ``body``, the largest extent bound to it."""
    out: dict[LoopKind, int] = {}
    for node, _ in walk(body):
        if isinstance(node, Loop) and (node.kind.is_block or node.kind.is_thread):
            out[node.kind] = max(out.get(node.kind, 1), node.extent)
    return out


def threads_per_block(body: tuple[Node, ...]) -> int:
    ext = launch_extents(body)
    return math.prod(ext.get(a, 1) for a in THREAD_AXES)


def uses_gpu(program: Program) -> bool:
    """Whether ``program`` binds a loop or has a shared buffer (so only a GPU can run it)."""
    return any(b.scope == Scope.SHARED for b in program.buffers) or any(
        lp.kind.is_bound for lp in program.loops())


def first_gpu_construct(program: Program) -> str | None:
    """A description of the first bound loop or shared buffer, for error messages."""
    for lp in program.loops():
        if lp.kind.is_bound:
            return f"loop {lp.var} is bound to {lp.kind.value}"
    for b in program.buffers:
        if b.scope == Scope.SHARED:
            return f"buffer {b.name} is in shared memory"
    return None


def spatial_vars(block: Block) -> set[str]:
    """Loop variables that feed ``block``'s spatial iteration variables."""
    return _feeding(block, reduce=False)


def reduce_vars(block: Block) -> set[str]:
    """Loop variables that feed ``block``'s reduction iteration variables."""
    return _feeding(block, reduce=True)


def _feeding(block: Block, reduce: bool) -> set[str]:
    out: set[str] = set()
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        if iv.reduce == reduce:
            out |= E.free_vars(b)
    return out
