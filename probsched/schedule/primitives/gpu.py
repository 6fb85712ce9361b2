"""GPU primitives: binding a loop to a block or thread axis, and the limits of a launch.

``bind`` sets a loop's kind to a GPU axis (:class:`~probsched.ir.program.LoopKind`). It is
legal for a spatial loop whose iterations write distinct elements: its variable must feed
the spatial bindings of every block under it that writes memory other threads see (a
per-thread local buffer excepted). A loop carrying a sum, max or min into a local buffer may
be bound to a threadIdx axis: a cross-thread reduction (each thread reduces its share into
its own copy; the codegen then combines the copies across the threads). An axis is bound at
most once on any path from the root (sibling nests may bind one axis again, e.g. two
cooperative fetches); ``blockIdx`` loops are outermost (loops of one iteration aside),
``threadIdx`` loops are inside them. The launch that results must fit the device: threads
per block, block and grid dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...ir import threads, tree
from ...ir.program import Loop, LoopKind, Program, Scope, walk

CROSS_THREAD_REDUCTIONS = ("sum", "max", "min")


@dataclass(frozen=True)
class LaunchLimits:
    """What a device allows of a launch (from :class:`~probsched.target.CudaTarget`)."""

    max_threads_per_block: int
    max_block_dims: tuple[int, int, int]
    max_grid_dims: tuple[int, int, int]


def axis_kind(axis: object) -> LoopKind:
    if not isinstance(axis, str) or axis not in threads.AXIS_NAMES:
        raise ValueError(f"unknown thread axis {axis!r}; expected one of "
                         f"{', '.join(threads.AXIS_NAMES)}")
    return threads.AXIS_NAMES[axis]


def bind(program: Program, var: str, axis: str, limits: LaunchLimits) -> Program:
    """Bind loop ``var`` to ``axis`` ("blockIdx.x", ..., "threadIdx.z" or "vthread")."""
    kind = axis_kind(axis)
    path = tree.find_loop(program, var)
    if path is None:
        raise ValueError(f"no loop {var} in the program")
    loop = tree.loop_at(program, path)
    if loop.kind != LoopKind.SERIAL:
        raise ValueError(f"loop {var} is {loop.kind.value} already; only a serial loop can be "
                         "bound")
    for b in tree.blocks_under(loop):
        scope = program.buffer(b.body.buffer).scope
        if var in threads.reduce_vars(b):
            _check_cross_thread(program, b, var, axis, kind)
            continue
        if scope != Scope.LOCAL and var not in threads.spatial_vars(b):
            raise ValueError(f"block {b.name} writes {b.body.buffer} at the same elements in "
                             f"every iteration of loop {var}; bound to {axis} they would race")
    outer = tree.ancestors(program, path)
    inner = [n for n, _ in walk(loop.body) if isinstance(n, Loop)]
    if kind != LoopKind.VTHREAD:
        for other in (*outer, *inner):
            if other.kind == kind:
                raise ValueError(f"loop {other.var} is bound to {axis} already, "
                                 f"{'outside' if other in outer else 'inside'} loop {var}; an "
                                 "axis is bound once in a kernel's loop nest")
    if kind.is_block:
        for anc in outer:
            if not anc.kind.is_block and anc.extent > 1:
                raise ValueError(f"loop {var} is inside loop {anc.var} ({anc.kind.value}); "
                                 "blockIdx loops must be outermost (loops of one iteration "
                                 "aside)")
    else:
        for lp in inner:
            if lp.kind.is_block:
                raise ValueError(f"loop {lp.var} (blockIdx) would be inside {axis} loop {var}; "
                                 "blockIdx loops must be outermost")
    new = tree.replace_at(program, path, (replace(loop, kind=kind),))
    check_launch(new, limits)
    return new


def _check_cross_thread(program: Program, block, var: str, axis: str, kind: LoopKind) -> None:
    """Loop ``var`` carrying ``block``'s reduction may be a threadIdx loop when each thread
    sums into its own local copy (the threads' partial results are then combined)."""
    if not kind.is_thread:
        raise ValueError(f"loop {var} carries the reduction of block {block.name}; it is not "
                         f"a spatial loop and cannot be bound to {axis} (rfactor first, or "
                         "bind it to a threadIdx axis for a cross-thread reduction)")
    if block.reduction not in CROSS_THREAD_REDUCTIONS:
        raise ValueError(f"loop {var} carries block {block.name}'s {block.reduction} "
                         "reduction; a cross-thread reduction combines "
                         f"{'/'.join(CROSS_THREAD_REDUCTIONS)}")
    if var in threads.spatial_vars(block):
        raise ValueError(f"loop {var} feeds both a spatial and a reduce index of block "
                         f"{block.name}; it cannot be bound to {axis}")
    buf = program.buffer(block.body.buffer)
    if buf.scope != Scope.LOCAL:
        raise ValueError(f"loop {var} carries the reduction of block {block.name} into "
                         f"{buf.scope.value} {buf.name}; bound to {axis} the threads would "
                         f"race: set_scope({block.name}, \"local\") first (or cache_write it "
                         "to local) so that each thread sums its own copy")


def check_launch(program: Program, limits: LaunchLimits) -> None:
    """Refuse a launch the device cannot make (``ValueError`` naming the loops)."""
    ext = threads.launch_extents(program.body)
    for axes, dims, what in ((threads.THREAD_AXES, limits.max_block_dims, "block"),
                             (threads.BLOCK_AXES, limits.max_grid_dims, "grid")):
        for axis, most in zip(axes, dims, strict=True):
            if ext.get(axis, 1) > most:
                loops = _bound_to(program, axis)
                raise ValueError(f"{axis.value} would be {ext[axis]} (loop "
                                 f"{', '.join(loops)}); the device's {what} dimension is at "
                                 f"most {most}")
    n = threads.threads_per_block(program.body)
    if n > limits.max_threads_per_block:
        shown = ", ".join(f"{a.value}={ext[a]} ({', '.join(_bound_to(program, a))})"
                          for a in threads.THREAD_AXES if a in ext)
        raise ValueError(f"{n} threads per block ({shown}); the device allows at most "
                         f"{limits.max_threads_per_block}")


def _bound_to(program: Program, kind: LoopKind) -> list[str]:
    return [lp.var for lp in program.loops() if lp.kind == kind]
