"""Pooling in ONNX's layout (N x C x spatial...): MaxPool, AveragePool (count_include_pad
either way), GlobalAveragePool and GlobalMaxPool. Reductions over the window: padding is a
select inside the window's body (the lowest float32 for max, 0 for a sum), and an average
divides by a constant of the taps counted per output position, computed at import."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..ir.ops import all_of, reduce_max, reduce_sum, select
from .graph import REDUCE, Op
from .indexing import out_axes
from .node import NodeContext, translator
from .ops_conv import geometry, window_outputs

LOWEST = float(np.finfo(np.float32).min)
_POOL_ATTRS = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


def _window(ctx: NodeContext):
    xs = ctx.shape(0)
    if len(xs) < 3:
        raise ctx.error(f"input of shape {xs}; expected N x C x spatial")
    kernel = ctx.attr("kernel_shape")
    if kernel is None:
        raise ctx.error("kernel_shape is required")
    kernel = tuple(int(k) for k in kernel)
    if ctx.attr("ceil_mode", 0):
        raise ctx.error("ceil_mode=1 is not supported (0 is)")
    strides, dil, pb, pe = geometry(ctx, xs[2:], kernel)
    out = window_outputs(ctx, xs[2:], kernel, strides, dil, pb, pe, "window")
    return xs, kernel, strides, dil, pb, pe, out


def _window_body(x, ax, rs, strides, dil, pb, fill):
    conds, src = [], list(ax[:2])
    for d in range(len(rs)):
        pos = ax[2 + d] * strides[d] + rs[d] * dil[d] - pb[d]
        conds += [pos >= 0, pos < x.shape[2 + d]]
        src.append(pos)
    return select(all_of(*conds), x[tuple(src)], fill)


@translator("MaxPool", attrs=(*_POOL_ATTRS, "storage_order"))
def max_pool(ctx: NodeContext) -> Op:
    ctx.attr("storage_order")
    xs, kernel, strides, dil, pb, pe, out = _window(ctx)
    shape = (*xs[:2], *out)

    def emit(em, ts):
        ax, rs = out_axes(len(shape)), out_axes(len(kernel), "r")
        body = _window_body(ts[0], ax, rs, strides, dil, pb, LOWEST)
        extents = {r.name: k for r, k in zip(rs, kernel, strict=True)}
        return em.compute("maxpool", ax, reduce_max(body), shape=shape, extents=extents)

    return ctx.op("maxpool", REDUCE, ctx.inputs[:1], shape, emit)


@translator("AveragePool", attrs=(*_POOL_ATTRS, "count_include_pad"))
def average_pool(ctx: NodeContext) -> Op:
    xs, kernel, strides, dil, pb, pe, out = _window(ctx)
    shape = (*xs[:2], *out)
    include_pad = bool(ctx.attr("count_include_pad", 0))
    count = np.ones(out, np.float32)
    for pos in itertools.product(*(range(o) for o in out)):
        taps = 1
        for d, o in enumerate(pos):
            lo, hi = (-pb[d], xs[2 + d] + pe[d]) if include_pad else (0, xs[2 + d])
            taps *= sum(1 for r in range(kernel[d])
                        if lo <= o * strides[d] + r * dil[d] - pb[d] < hi)
        count[pos] = taps
    name = f"{ctx.name}:count"
    ctx.graph.constants[name] = count

    def emit(em, ts):
        ax, rs = out_axes(len(shape)), out_axes(len(kernel), "r")
        body = _window_body(ts[0], ax, rs, strides, dil, pb, 0.0)
        extents = {r.name: k for r, k in zip(rs, kernel, strict=True)}
        s = em.compute("poolsum", ax, reduce_sum(body), shape=shape, extents=extents)
        return em.compute("avgpool", ax, s[ax] / ts[1][ax[2:]])

    return ctx.op("avgpool", REDUCE, [ctx.inputs[0], name], shape, emit)


@translator("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: NodeContext) -> Op:
    xs = ctx.shape(0)
    if len(xs) < 3:
        raise ctx.error(f"input of shape {xs}; expected N x C x spatial")
    shape = (*xs[:2], *(1 for _ in xs[2:]))
    average = ctx.op_type == "GlobalAveragePool"

    def emit(em, ts):
        ax, rs = out_axes(len(shape)), out_axes(len(xs) - 2, "r")
        x = ts[0][(*ax[:2], *rs)]
        if not average:
            return em.compute("gmaxpool", ax, reduce_max(x), shape=shape)
        s = em.compute("gsum", ax, reduce_sum(x), shape=shape)
        return em.compute("gavgpool", ax, s[ax] / float(math.prod(xs[2:])))

    return ctx.op("gavgpool" if average else "gmaxpool", REDUCE, ctx.inputs[:1], shape, emit)
