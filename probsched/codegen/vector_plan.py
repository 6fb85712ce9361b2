"""Vectorized loops: whether a body can run on vectors, and in what widths.

A vectorized loop runs its body once with the loop variable as a vector (:mod:`.llvm`). That
works when every store of the body either writes one element per lane or is a reduction whose
lanes can be combined first (:mod:`.memory`); lane coefficients (:mod:`.lanes`) tell, by a
dry run of the analysis over the body (a probe emitter, emitting nothing). Loops wider than
the target's vectors run as native-width chunks, one after another.
"""

from __future__ import annotations

from ..ir import expr as E
from ..ir.program import Loop, Node
from . import memory
from .exprs import ExprEmitter
from .irtext import Value
from .lanes import VarInfo

MAX_VECTOR_LANES = 64
"""Widest vectorized loop run as vectors one after another; wider ones loop over chunks."""


def chunk_width(extent: int, native: int) -> int:
    """Lanes per vector of a vectorized loop: ``native`` (the target's) when the loop is a
    multiple of it (it then runs as native vectors one after another), else the whole loop."""
    return native if extent > native and extent % native == 0 else extent


def why_not_vectors(ex: ExprEmitter, loop: Loop, native: int) -> str | None:
    """None when vectorized ``loop`` (at ``ex``'s position) can run its body on vectors; else
    why not (it then stays a scalar loop with a vectorization hint for LLVM). ``native``: the
    target's float32 lanes."""
    if loop.extent > MAX_VECTOR_LANES and loop.extent % native:
        return f"extent {loop.extent} > {MAX_VECTOR_LANES} is not a multiple of {native}"
    probe = ExprEmitter(ex.fn, ex.module, ex.program, dict(ex.ptrs), ex.plans)
    probe.vars = {k: VarInfo(v.base, 0, align=v.align) for k, v in ex.vars.items()}
    probe.lanes = chunk_width(loop.extent, native)
    probe.vars[loop.var] = VarInfo(Value("0", "int64"), 1, align=probe.lanes)
    return _plan_nodes(probe, loop.body)


def _plan_nodes(probe: ExprEmitter, nodes: tuple[Node, ...]) -> str | None:
    for node in nodes:
        if isinstance(node, Loop):
            probe.vars[node.var] = VarInfo(Value("0", "int64"), 0)
            why = _plan_nodes(probe, node.body)
            if why:
                return why
            continue
        for name, _ in memory.offsets(probe, node):
            probe.vars[name] = VarInfo(Value("0", "int64"), 0)
        for iv, b in zip(node.iter_vars, node.bindings, strict=True):
            probe.vars[iv.name] = VarInfo(Value("0", "int64"), probe.coeff(b),
                                          align=probe.align(b))
        for st in (node.init, node.body):
            if st is None:
                continue
            stride = memory.access_stride(probe, st.buffer, st.indices)
            update = memory.reduction_update(st, node.reduction if st is node.body else None)
            if stride == 0 and probe.depends(st.value):
                if update is None or probe.depends(E.Load(st.buffer, st.indices)):
                    return f"block {node.name}: lanes store different values to one place"
            if stride is None and update is not None:
                return f"block {node.name}: reduction lanes may collide"
    return None
