"""Accesses to compacted buffers in a GPU kernel, indexed relative to their starts with the
difference simplified first (``(a*4 + b)*8 + c - (a*32 + b*8)`` is ``c``): LLVM does not always
see it, and a register tile indexed at run time stays in (slow) local memory."""

from __future__ import annotations

from dataclasses import replace

from ..ir import analysis
from ..ir import expr as E
from ..ir.program import Block, Store
from .buffers import BufferPlan


def relative_accesses(block: Block, plans: dict[str, BufferPlan]
                       ) -> tuple[Block, dict[str, E.Expr]] | None:
    """``block`` with each access to a compacted buffer indexed by new variables (``@rel.k``)
    and their values: index minus start, simplified, in the loop variables. None when the
    block touches no compacted buffer."""
    bind = block.binding_map
    values: dict[str, E.Expr] = {}
    memo: dict[tuple, tuple[E.Expr, ...]] = {}

    def relative(buffer: str, indices: tuple[E.Expr, ...]) -> tuple[E.Expr, ...]:
        plan = plans.get(buffer)
        if plan is None or plan.starts is None:
            return indices
        key = (buffer, indices)
        if key not in memo:
            out = []
            for ix, start in zip(indices, plan.starts, strict=True):
                name = f"@rel.{len(values)}"
                values[name] = analysis.difference(E.substitute(ix, bind), start)
                out.append(E.Var(name))
            memo[key] = tuple(out)
        return memo[key]

    def fix_expr(e: E.Expr) -> E.Expr:
        def visit(n: E.Expr) -> E.Expr | None:
            if isinstance(n, E.Load):
                return E.Load(n.tensor, relative(n.tensor, n.indices))
            return None

        return E.transform(e, visit)

    def fix(st: Store | None) -> Store | None:
        if st is None:
            return None
        return Store(st.buffer, relative(st.buffer, st.indices), fix_expr(st.value))

    body, init = fix(block.body), fix(block.init)
    if not values:
        return None
    assert body is not None
    return replace(block, body=body, init=init), values

