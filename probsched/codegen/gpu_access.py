"""Accesses to compacted buffers in a GPU kernel, indexed relative to their starts with the
difference simplified first (``(a*4 + b)*8 + c - (a*32 + b*8)`` is ``c``): LLVM does not always
see it, and a register tile indexed at run time stays in (slow) local memory."""

from __future__ import annotations

from dataclasses import replace

from ..ir import analysis
from ..ir import expr as E
from ..ir.printer import format_expr
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
                values[name] = _difference(E.substitute(ix, bind), start)
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


def _linear(e: E.Expr) -> tuple[dict[str, tuple[int, E.Expr]], int]:
    """``e`` as a sum of terms (coefficient and expression, by key) and a constant, where
    anything not affine (``h // 28``, ``h % 28``) is one opaque term, keyed by its text."""
    if isinstance(e, E.Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return {}, e.value
    if isinstance(e, E.Var):
        return {e.name: (1, e)}, 0
    if isinstance(e, E.Binary) and e.op in ("+", "-"):
        (a, ka), (b, kb) = _linear(e.a), _linear(e.b)
        sign = 1 if e.op == "+" else -1
        terms = dict(a)
        for key, (c, x) in b.items():
            terms[key] = (terms.get(key, (0, x))[0] + sign * c, x)
        return {k: t for k, t in terms.items() if t[0]}, ka + sign * kb
    if isinstance(e, E.Binary) and e.op == "*":
        (a, ka), (b, kb) = _linear(e.a), _linear(e.b)
        if not a:
            (a, ka), (b, kb) = (b, kb), (a, ka)
        if not b:  # one side constant
            return {k: (c * kb, x) for k, (c, x) in a.items() if c * kb}, ka * kb
    return {f"@{format_expr(e)}": (1, e)}, 0


def _difference(index: E.Expr, start: E.Expr) -> E.Expr:
    """``index - start`` simplified: equal terms cancel, opaque ones included (a block's
    ``n // 28`` in both), so that a register tile's index is a constant LLVM need not find."""
    terms, const = _linear(E.binary("-", index, start))
    affine = {k: c for k, (c, x) in terms.items() if isinstance(x, E.Var)}
    out = analysis.from_affine(affine, const)
    for c, x in terms.values():
        if not isinstance(x, E.Var):
            out = E.binary("+", out, E.binary("*", x, c))
    return out
