"""Reductions: ReduceSum, ReduceMean, ReduceMax (axes as attribute or constant input,
keepdims, noop_with_empty_axes), Softmax (opset 13: one axis) and LayerNormalization
(over the trailing axes from ``axis``; scale and bias). Anchors of the ``reduce`` family,
several stages each (the reduction, then what divides by it)."""

from __future__ import annotations

import math

from ..ir.expr import Var
from ..ir.ops import exp, reduce_max, reduce_sum, sqrt
from .graph import REDUCE, Op
from .indexing import bload, out_axes
from .node import NodeContext, translator


def _reduced_axes(ctx: NodeContext, rank: int) -> tuple[int, ...] | None:
    """The axes to reduce, sorted; None for the no-op of empty axes."""
    axes = ctx.attr("axes")
    if axes is None and ctx.has(1):
        axes = [int(a) for a in ctx.need_const(1, "axes").reshape(-1)]
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    out = sorted({ctx.axis(int(a), rank) for a in axes})
    return tuple(out)


@translator("ReduceSum", "ReduceMean", "ReduceMax",
            attrs=("axes", "keepdims", "noop_with_empty_axes"))
def reduce(ctx: NodeContext) -> Op:
    xs = ctx.shape(0)
    red = _reduced_axes(ctx, len(xs))
    kind = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max"}[ctx.op_type]
    keep = bool(ctx.attr("keepdims", 1))
    if red is None:
        red = ()
    shape = tuple(1 if d in red else n for d, n in enumerate(xs) if keep or d not in red)
    count = math.prod(xs[d] for d in red)

    def emit(em, ts):
        ax = out_axes(len(shape))
        it = iter(ax)
        src = []
        for d in range(len(xs)):
            if d in red:
                src.append(Var(f"r{d}"))
                if keep:
                    next(it)
            else:
                src.append(next(it))
        x = ts[0][tuple(src)]
        if not red:
            return em.compute("copy", ax, x, shape=shape)
        fn = reduce_max if kind == "max" else reduce_sum
        s = em.compute(kind if kind != "mean" else "sum", ax, fn(x), shape=shape)
        if kind != "mean":
            return s
        return em.compute("mean", ax, s[ax] / float(count))

    return ctx.op(f"reduce{kind}", REDUCE, ctx.inputs[:1], shape, emit)


@translator("Softmax", attrs=("axis",))
def softmax(ctx: NodeContext) -> Op:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``."""
    xs = ctx.shape(0)
    axis = ctx.axis(int(ctx.attr("axis", -1)), len(xs))

    def emit(em, ts):
        x = ts[0]
        ax = out_axes(len(xs))
        row = ax[:axis] + ax[axis + 1:]
        red = (*ax[:axis], Var("r"), *ax[axis + 1:])
        rshape = xs[:axis] + xs[axis + 1:]
        m = em.compute("max", row, reduce_max(x[red]), shape=rshape)
        e = em.compute("exp", ax, exp(x[ax] - m[row]))
        s = em.compute("sum", row, reduce_sum(e[red]), shape=rshape)
        return em.compute("softmax", ax, e[ax] / s[row])

    return ctx.op("softmax", REDUCE, ctx.inputs[:1], xs, emit)


@translator("LayerNormalization", attrs=("axis", "epsilon", "stash_type"))
def layer_norm(ctx: NodeContext) -> Op:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the axes from ``axis`` on."""
    xs = ctx.shape(0)
    axis = ctx.axis(int(ctx.attr("axis", -1)), len(xs))
    eps = float(ctx.attr("epsilon", 1e-5))
    if int(ctx.attr("stash_type", 1)) != 1:
        raise ctx.error("stash_type other than 1 (float) is not supported")
    count = float(math.prod(xs[axis:]))
    has_bias = ctx.has(2)
    scale_const, bias_const = ctx.scalar(1), ctx.scalar(2) if has_bias else None
    inputs = [ctx.inputs[0]]
    inputs += [ctx.inputs[1]] if scale_const is None else []
    inputs += [ctx.inputs[2]] if has_bias and bias_const is None else []

    def emit(em, ts):
        it = iter(ts)
        x = next(it)
        ax = out_axes(len(xs))
        row = ax[:axis]
        red = (*row, *out_axes(len(xs) - axis, "r"))
        rshape = xs[:axis]
        s1 = em.compute("sum", row, reduce_sum(x[red]), shape=rshape)
        d = em.compute("center", ax, x[ax] - s1[row] / count)
        s2 = em.compute("sum", row, reduce_sum(d[red] * d[red]), shape=rshape)
        y = d[ax] / sqrt(s2[row] / count + eps)
        y = y * (bload(next(it), ax) if scale_const is None else scale_const)
        if has_bias:
            y = y + (bload(next(it), ax) if bias_const is None else bias_const)
        return em.compute("layernorm", ax, y)

    return ctx.op("layernorm", REDUCE, inputs, xs, emit)
