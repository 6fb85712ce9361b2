"""Compute-location primitives: compute_at, reverse_compute_at, and the legal locations
``sample_compute_location`` draws from.

Both primitives move a block that is alone in its root-level loop nest under a loop of another
nest, and give it fresh loops over just the region that matters per iteration of that loop:
the region its consumers there read (compute_at) or its producers there write
(reverse_compute_at). Regions come from :func:`analysis.region`: affine in the loops outside,
of constant extent. Where interval arithmetic cannot prove the region inside the buffer (a
halo at the border, a partial tile), the block gets a guard.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ...ir import analysis, intervals, ops, tree
from ...ir import expr as E
from ...ir.program import Block, Loop, LoopKind, Node, Program, Scope


def _alone(program: Program, name: str) -> tuple[tree.Path, Block]:
    """The path and block ``name``, which must be the only block of its root-level nest (its
    loops are then its own, and moving it leaves nothing behind)."""
    path = tree.find_block(program, name)
    if path is None:
        raise ValueError(f"no block {name} in the program")
    others = [b.name for b in tree.blocks_under(program.body[path[0]]) if b.name != name]
    if others:
        raise ValueError(f"block {name} is not alone in its loop nest (it shares it with "
                         f"{', '.join(others)})")
    return path, tree.block_at(program, path)


def _target(program: Program, var: str, path: tree.Path, name: str) -> tuple[tree.Path, Loop]:
    lpath = tree.find_loop(program, var)
    if lpath is None:
        raise ValueError(f"no loop {var} in the program")
    if path[: len(lpath)] == lpath:
        raise ValueError(f"block {name} is under loop {var} already")
    return lpath, tree.loop_at(program, lpath)


def _spatial_identity(block: Block) -> tuple[E.Expr, ...]:
    return tuple(E.Var(iv.name) for iv in block.iter_vars if not iv.reduce)


def _at_identity(indices: tuple[E.Expr, ...], block: Block) -> bool:
    """Whether ``indices`` read ``block``'s own point: its spatial iteration variables in
    order, where an axis of extent one may be read at 0 (its only value; a numpy-broadcast
    load, e.g. an ONNX bias add on ``conv[0, h, w, c]``, reads so)."""
    spatial = [iv for iv in block.iter_vars if not iv.reduce]
    if len(indices) != len(spatial):
        return False
    return all(ix == E.Var(iv.name)
               or (iv.extent == 1 and isinstance(ix, E.Const) and ix.value == 0)
               for ix, iv in zip(indices, spatial, strict=True))


def _region(indices: list[tuple[E.Expr, ...]], loop: Loop, what: str) -> analysis.Interval:
    reg = analysis.region(indices, analysis.inner_loops(loop))
    if reg is None:
        raise ValueError(f"the region of {what} under loop {loop.var} is not affine with "
                         "constant extent")
    return reg


# ---------------------------------------------------------------- legality


def _producer(program: Program, name: str) -> tuple[tree.Path, Block, list[Block]]:
    """The loop-independent checks of compute_at(name, ...): the block's path, the block,
    and its consumers."""
    path, block = _alone(program, name)
    buf = block.body.buffer
    if program.buffer(buf).scope == Scope.OUTPUT:
        raise ValueError(f"block {name} writes output {buf}; computing only what consumers "
                         "read would leave parts of it unwritten")
    for st in (block.body, block.init):
        if st is not None and st.indices != _spatial_identity(block):
            raise ValueError(f"block {name} does not store {buf} at its spatial iteration "
                             f"variables in order")
    for other in program.blocks():
        if other.name != name and other.body.buffer == buf:
            raise ValueError(f"{buf} is also written by block {other.name}")
    return path, block, analysis.consumers(program, block)


def _compute_at_plan(program: Program, name: str, var: str
                     ) -> tuple[tree.Path, Block, analysis.Interval]:
    """Check compute_at(name, var); return the block's path, the block, and the region of its
    buffer the consumers under ``var`` read per iteration."""
    path, block, consumers = _producer(program, name)
    _, loop = _target(program, var, path, name)
    buf = block.body.buffer
    under = {b.name for b in tree.blocks_under(loop)}
    inside = [c for c in consumers if c.name in under]
    if not inside:
        raise ValueError(f"loop {var} does not enclose any consumer of block {name}")
    for c in consumers:
        if c.name not in under:
            raise ValueError(f"consumer {c.name} of block {name} is not under loop {var} (it "
                             "would read uncomputed data)")
    indices = [ix for c in inside for ix in analysis.accesses(c, buf, writes=False)]
    if program.buffer(buf).scope == Scope.SHARED:
        # A thread block's buffer: what all its threads read, so the thread loops around
        # ``loop`` (and ``loop`` itself) count as inner (relaxed).
        lpath = tree.loop_path(program, var)
        relaxed = {lp.var: lp.extent for lp in (*tree.ancestors(program, lpath), loop)
                   if lp.kind.is_thread or lp.kind == LoopKind.VTHREAD}
        reg = analysis.region(indices, {**analysis.inner_loops(loop), **relaxed})
        if reg is None:
            raise ValueError(f"the region of {buf} read by the threads of a block under loop "
                             f"{var} is not affine with constant extent")
        return path, block, reg
    return path, block, _region(indices, loop, f"{buf} read")


def _reverse_plan(program: Program, name: str, var: str
                  ) -> tuple[tree.Path, Block, analysis.Interval]:
    """Check reverse_compute_at(name, var); return the block's path, the block, and the
    region (in the block's spatial iteration space) produced per iteration of ``var``."""
    path, block = _alone(program, name)
    lpath, loop = _target(program, var, path, name)
    inside = tree.blocks_under(loop)
    under = {b.name for b in inside}
    reads = analysis.buffers_read(block)
    producers = [b for b in inside if b.body.buffer in reads]
    if not producers:
        raise ValueError(f"loop {var} does not enclose any producer of block {name}")
    produced = sorted({p.body.buffer for p in producers})
    for other in program.blocks():
        if other.name in under or other.name == name:
            continue
        if other.body.buffer == block.body.buffer:
            raise ValueError(f"{other.body.buffer} is also written by block {other.name}")
        if other.body.buffer in produced:
            raise ValueError(f"{other.body.buffer} is also written by block {other.name}, "
                             f"outside loop {var}")
        if other.body.buffer in reads and tree.block_path(program, other.name)[0] >= lpath[0]:
            raise ValueError(f"block {name} reads {other.body.buffer}, which block "
                             f"{other.name} computes after loop {var}")
    # A loop of one iteration carries nothing (e.g. a k loop split into a single block).
    carried = {lp.var for lp in (loop, *tree.ancestors(program, lpath)) if lp.extent > 1}
    for p in producers:
        for iv, b in zip(p.iter_vars, p.bindings, strict=True):
            if iv.reduce and E.free_vars(b) & carried:
                raise ValueError(f"loop {var} carries the reduction of block {p.name}; block "
                                 f"{name} would read partial results")
    regions = []
    values = [st.value for st in (block.body, block.init) if st is not None]
    for buf in produced:
        if any(ld.tensor == buf and not _at_identity(ld.indices, block)
               for v in values for ld in E.loads(v)):
            raise ValueError(f"block {name} does not read {buf} at its spatial iteration "
                             "variables in order (an elementwise consumer is needed)")
        indices = [ix for p in producers if p.body.buffer == buf
                   for ix in analysis.accesses(p, buf, reads=False)]
        regions.append(_region(indices, loop, f"{buf} written"))
    if any(r != regions[0] for r in regions):
        raise ValueError(f"the producers under loop {var} write different regions of "
                         f"{', '.join(produced)}")
    _check_no_holes(producers, loop, regions[0])
    return path, block, regions[0]


def _check_no_holes(producers: list[Block], loop: Loop, region: analysis.Interval) -> None:
    """The consumer copies the whole box; every element of it must be written during the same
    iteration. A producer writes at most as many points as its inner loops feeding spatial
    bindings make; fewer than the box means holes (e.g. when an inner tile loop was reordered
    outside its outer one)."""
    inner = analysis.inner_loops(loop)
    box = math.prod(region.extents)
    for p in producers:
        used = set()
        for iv, b in zip(p.iter_vars, p.bindings, strict=True):
            if not iv.reduce:
                used |= E.free_vars(b) & inner.keys()
        if math.prod(inner[v] for v in used) < box:
            raise ValueError(f"the region of {p.body.buffer} written under loop {loop.var} has "
                             "holes; the consumer would copy elements not yet computed")


# ---------------------------------------------------------------- moving


def _move(program: Program, path: tree.Path, block: Block, var: str,
          region: analysis.Interval, at_end: bool) -> Program:
    """Remove ``block``'s root-level nest; rebuild it under loop ``var`` (first or last in
    its body) over ``region``: spatial iteration variables ``start + ax``, reduce ones over
    their whole extent, guarded where the region may leave the iteration domain."""
    # New loop names avoid the removed loops too: a loop RV taken before the move must not
    # silently refer to a new loop of the same name.
    taken = tree.loop_vars(program)
    program = tree.replace_at(program, (path[0],), ())
    lpath = tree.loop_path(program, var)
    loop = tree.loop_at(program, lpath)
    ranges = {lp.var: (0, lp.extent - 1) for lp in (*tree.ancestors(program, lpath), loop)}
    loops: list[Loop] = []
    bindings: list[E.Expr] = []
    conds: list[E.Expr] = []
    spatial = iter(zip(region.starts, region.extents, strict=True))
    for k, iv in enumerate(block.iter_vars):
        ax = tree.fresh_name(f"ax{k}", taken)
        taken.add(ax)
        if iv.reduce:
            loops.append(Loop(ax, iv.extent, ()))
            bindings.append(E.Var(ax))
            continue
        start, extent = next(spatial)
        value = E.binary("+", start, E.Var(ax))
        ranges[ax] = (0, extent - 1)
        span = intervals.bounds(value, ranges) or (-1, iv.extent)
        if span[0] < 0:
            conds.append(E.Compare("<=", E.Const(0), value))
        if span[1] >= iv.extent:
            conds.append(E.Compare("<", value, E.Const(iv.extent)))
        loops.append(Loop(ax, extent, ()))
        bindings.append(value)
    node: Node = replace(block, bindings=tuple(bindings),
                         predicate=ops.all_of(*conds) if conds else None)
    for lp in reversed(loops):
        node = replace(lp, body=(node,))
    position = len(loop.body) if at_end else 0
    return tree.insert_at(program, (*lpath, position), (node,))


def compute_at(program: Program, name: str, var: str) -> Program:
    """Move producer ``name`` to the start of loop ``var``'s body, computing per iteration
    only the region of its buffer that the consumers under ``var`` read. The block must store
    at its spatial iteration variables (stages and cache copies do); its old predicate, a
    guard of its old loops, is replaced by guards of the new ones."""
    path, block, region = _compute_at_plan(program, name, var)
    return _move(program, path, block, var, region, at_end=False)


def reverse_compute_at(program: Program, name: str, var: str) -> Program:
    """Move consumer ``name`` to the end of loop ``var``'s body, consuming per iteration only
    what the producers under ``var`` write. The block must read the produced buffers at its
    spatial iteration variables (write-back blocks and elementwise epilogues do)."""
    path, block, region = _reverse_plan(program, name, var)
    return _move(program, path, block, var, region, at_end=True)


def compute_location_candidates(program: Program, name: str) -> list[str]:
    """The loops (outermost first) of ``name``'s consumer where compute_at is legal; empty
    unless the block has exactly one consumer.

    Cheap, for replaying traces: the checks that do not depend on the loop run once; per loop
    only the region of the consumer's accesses is computed.
    """
    if tree.find_block(program, name) is None:
        return []
    try:
        _, block, consumers = _producer(program, name)
    except ValueError:
        return []
    if len(consumers) != 1:
        return []
    loops = tree.ancestors(program, tree.block_path(program, consumers[0].name))
    indices = analysis.accesses(consumers[0], block.body.buffer, writes=False)
    out = []
    for d, lp in enumerate(loops):
        inner = {a.var: a.extent for a in loops[d + 1 :]}
        if analysis.region(indices, inner) is not None:
            out.append(lp.var)
    return out


