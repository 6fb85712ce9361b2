"""Index helpers the translators share: output axes, numpy broadcasting, and loads that
broadcast a tensor to an output's axes."""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.compute import Stage, Tensor
from ..ir.expr import Const, Expr, Load, Var
from .node import NodeContext


def out_axes(rank: int, prefix: str = "a") -> tuple[Var, ...]:
    """``a0, a1, ...``: the axes of an output of ``rank`` dimensions."""
    return tuple(Var(f"{prefix}{k}") for k in range(rank))


def broadcast(ctx: NodeContext, shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """numpy's broadcast of ``shapes``; a ModelError naming the node where they don't."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for d in range(rank):
        sizes = {s[d - rank + len(s)] for s in shapes if d - rank + len(s) >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ctx.error(f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def bload(t: Tensor | Stage, ax: Sequence[Expr]) -> Load:
    """``t`` read at the output axes ``ax``, numpy-broadcast: aligned on the right, a
    dimension of one read at 0."""
    off = len(ax) - len(t.shape)
    return t[tuple(Const(0) if n == 1 else ax[off + d] for d, n in enumerate(t.shape))]
