"""Where a GPU program's intermediate buffers live and how much of each exists.

As for the CPU (:mod:`probsched.codegen.buffers`), an intermediate is placed at the innermost
loop enclosing all its accesses and shrunk to the region they touch during one iteration of
it. A ``shared`` buffer belongs to a thread block, not a thread: the thread-bound loops
(``threadIdx.*``, ``vthread``) around it are *relaxed*, so its region is what all the threads
of the block touch (TensorIR's rule). The schedule reads :func:`shared_bytes` to refuse
more shared memory than the device has; codegen uses :func:`placement` for the layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import analysis
from . import expr as E
from .program import Block, Loop, LoopKind, Node, Program, Scope, allocated_elements

ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


@dataclass(frozen=True)
class Placement:
    """The loops enclosing every access (outermost first) and the region touched per
    iteration of the innermost of them (``None``: the whole buffer)."""

    loops: tuple[Loop, ...]
    region: analysis.Interval | None

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.region is None else self.region.extents


def uses(program: Program) -> dict[str, list[tuple[tuple[Loop, ...], Block]]]:
    """For each buffer, the (enclosing loops, block) of every block that touches it."""
    out: dict[str, list[tuple[tuple[Loop, ...], Block]]] = {}

    def visit(nodes: tuple[Node, ...], loops: tuple[Loop, ...]) -> None:
        for node in nodes:
            if isinstance(node, Loop):
                visit(node.body, (*loops, node))
                continue
            for name in {node.body.buffer} | analysis.buffers_read(node):
                out.setdefault(name, []).append((loops, node))

    visit(program.body, ())
    return out


def _relaxed(loop: Loop) -> bool:
    return loop.kind.is_thread or loop.kind == LoopKind.VTHREAD


def placement(program: Program, name: str,
              found: dict[str, list[tuple[tuple[Loop, ...], Block]]] | None = None
              ) -> Placement:
    """Where buffer ``name`` lives (see the module's doc); thread loops relaxed for a shared
    buffer."""
    found = uses(program) if found is None else found
    buf = program.buffer(name)
    at = found.get(name, [])
    if not at:
        return Placement((), None)
    common = common_prefix([loops for loops, _ in at])
    if not common:
        return Placement((), None)
    inner: dict[str, int] = {}
    if buf.scope == Scope.SHARED:
        inner.update({lp.var: lp.extent for lp in common if _relaxed(lp)})
    for loops, _ in at:
        inner.update({lp.var: lp.extent for lp in loops[len(common):]})
    indices = [idx for _, blk in at for idx in analysis.accesses(blk, name)]
    reg = analysis.region(indices, inner)
    if reg is None or math.prod(reg.extents) >= buf.size:
        return Placement(common, None)
    return Placement(common, reg)


def placed_bytes(program: Program, name: str, place: Placement) -> int:
    buf = program.buffer(name)
    shape = buf.shape if place.region is None else place.region.extents
    return allocated_elements(shape, buf.align) * ITEMSIZE[buf.dtype]


def shared_bytes(program: Program) -> dict[str, int]:
    """Bytes of each shared buffer placed under a blockIdx loop (a copy still in a nest of
    its own at the root is not placed yet)."""
    found = uses(program)
    out = {}
    for buf in program.buffers:
        if buf.scope != Scope.SHARED:
            continue
        place = placement(program, buf.name, found)
        if any(lp.kind.is_block for lp in place.loops):
            out[buf.name] = placed_bytes(program, buf.name, place)
    return out


def common_prefix(chains: list[tuple[Loop, ...]]) -> tuple[Loop, ...]:
    """The loops (by variable) that begin every chain of ``chains``."""
    first = chains[0]
    n = len(first)
    for c in chains[1:]:
        k = 0
        while k < min(n, len(c)) and c[k].var == first[k].var:
            k += 1
        n = k
    return first[:n]


def starts_free_of(place: Placement, names: set[str]) -> bool:
    """Whether the region's starts use none of ``names`` (thread variables, say)."""
    if place.region is None:
        return True
    return not any(E.free_vars(s) & names for s in place.region.starts)
