"""Matrix products: MatMul (numpy's: batched with broadcast batch dimensions, 1-D operands
promoted) and Gemm (transposed operands, alpha, beta and the broadcast addend C). Anchors of
their tasks."""

from __future__ import annotations

from ..ir.expr import Var
from ..ir.ops import reduce_sum
from .graph import ANCHOR, Op
from .indexing import bload, broadcast, out_axes
from .node import NodeContext, translator


@translator("MatMul")
def matmul(ctx: NodeContext) -> Op:
    sa, sb = ctx.shape(0), ctx.shape(1)
    if not sa or not sb:
        raise ctx.error("MatMul of a scalar is not defined")
    k = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if k != kb:
        raise ctx.error(f"shapes {sa} and {sb}: inner dimensions {k} and {kb} differ")
    batch = broadcast(ctx, [sa[:-2], sb[:-2]])
    rows = (sa[-2],) if len(sa) > 1 else ()
    cols = (sb[-1],) if len(sb) > 1 else ()
    shape = (*batch, *rows, *cols)

    def emit(em, ts):
        a, b = ts
        ax = out_axes(len(shape))
        bat, rest = ax[: len(batch)], ax[len(batch):]
        i = rest[0] if rows else None
        j = rest[-1] if cols else None
        r = Var("r")
        ia = (*_batch_index(a.shape[:-2], bat), *((i,) if i is not None else ()), r)
        ib = (*_batch_index(b.shape[:-2], bat), r, *((j,) if j is not None else ()))
        if len(b.shape) == 1:
            ib = (r,)
        return em.compute("matmul", ax, reduce_sum(a[ia] * b[ib]), shape=shape)

    return ctx.op("matmul", ANCHOR, ctx.inputs[:2], shape, emit)


def _batch_index(dims, bat):
    """Indices of an operand's batch dimensions ``dims`` into the output's batch axes."""
    off = len(bat) - len(dims)
    return tuple(0 if n == 1 else bat[off + d] for d, n in enumerate(dims))


@translator("Gemm", attrs=("alpha", "beta", "transA", "transB"))
def gemm(ctx: NodeContext) -> Op:
    """``alpha * A' B' + beta * C`` (A', B' transposed as asked)."""
    sa, sb = ctx.shape(0), ctx.shape(1)
    if len(sa) != 2 or len(sb) != 2:
        raise ctx.error(f"operands of shapes {sa}, {sb}; Gemm takes matrices")
    ta, tb = int(ctx.attr("transA", 0)), int(ctx.attr("transB", 0))
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    m, k = (sa[1], sa[0]) if ta else sa
    kb, n = (sb[1], sb[0]) if tb else sb
    if k != kb:
        raise ctx.error(f"shapes {sa}, {sb} (transA={ta}, transB={tb}): inner dimensions differ")
    shape = (m, n)
    c_scalar = ctx.scalar(2) if ctx.has(2) and beta != 0.0 else None
    c_tensor = ctx.has(2) and beta != 0.0 and c_scalar is None
    if c_tensor:
        broadcast(ctx, [ctx.shape(2), shape])

    def emit(em, ts):
        a, b = ts[0], ts[1]
        i, j, r = Var("a0"), Var("a1"), Var("r")
        prod = a[r, i] if ta else a[i, r]
        prod = prod * (b[j, r] if tb else b[r, j])
        y = em.compute("matmul", (i, j), reduce_sum(prod), shape=shape)
        if alpha == 1.0 and not c_tensor and c_scalar is None:
            return y
        v = y[i, j] * alpha if alpha != 1.0 else y[i, j]
        if c_tensor:
            v = v + (bload(ts[2], (i, j)) * beta if beta != 1.0 else bload(ts[2], (i, j)))
        elif c_scalar is not None:
            v = v + c_scalar * beta
        return em.compute("bias", (i, j), v)

    inputs = ctx.inputs[:3] if c_tensor else ctx.inputs[:2]
    return ctx.op("matmul", ANCHOR, inputs, shape, emit)
