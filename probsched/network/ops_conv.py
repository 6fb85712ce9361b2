"""Convolutions in ONNX's layout (N x C x spatial..., weights M x C/group x kernel...), any
number of spatial dimensions: Conv (groups, dilations, strides, pads, auto_pad) and
ConvTranspose (the same, plus output_padding). Anchors of their tasks.

Padding is a stage of its own (``pad``, a select over the in-bounds condition) so that the
convolution reads it in bounds everywhere; the bias is an elementwise stage after it.
"""

from __future__ import annotations

import math

from ..ir.compute import Stage, Tensor
from ..ir.expr import Var
from ..ir.ops import all_of, eq, reduce_sum, select
from .graph import ANCHOR, Op
from .indexing import out_axes
from .node import NodeContext, translator

_CONV_ATTRS = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")


def geometry(ctx: NodeContext, spatial: tuple[int, ...], kernel: tuple[int, ...],
             transposed: bool = False):
    """(strides, dilations, pads begin, pads end) of a convolution node, auto_pad resolved."""
    k = len(spatial)
    strides = tuple(ctx.attr("strides", [1] * k))
    dilations = tuple(ctx.attr("dilations", [1] * k))
    given = ctx.attr("kernel_shape")
    if given is not None and tuple(given) != kernel:
        raise ctx.error(f"kernel_shape {tuple(given)} does not match the weights' {kernel}")
    pads = list(ctx.attr("pads", [0] * (2 * k)))
    auto = ctx.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        for d in range(k):
            out = -(-spatial[d] // strides[d]) if not transposed else spatial[d] * strides[d]
            span = (kernel[d] - 1) * dilations[d] + 1
            total = max(0, (out - 1) * strides[d] + span - spatial[d]) if not transposed \
                else max(0, strides[d] * (spatial[d] - 1) + span - out)
            small, big = total // 2, total - total // 2
            pads[d], pads[d + k] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * k)
    elif auto != "NOTSET":
        raise ctx.error(f"auto_pad {auto!r} is not supported (NOTSET, SAME_UPPER, SAME_LOWER, "
                        "VALID are)")
    if len(strides) != k or len(dilations) != k or len(pads) != 2 * k:
        raise ctx.error(f"strides, dilations and pads must give {k} spatial dimensions")
    return strides, dilations, tuple(pads[:k]), tuple(pads[k:])


def window_outputs(ctx: NodeContext, spatial, window, strides, dil, pb, pe,
                   what: str) -> tuple[int, ...]:
    """Output positions per spatial dimension of a window (a kernel or a pool's) sliding
    over the padded input; an error naming the node where it does not fit."""
    out = tuple((spatial[d] + pb[d] + pe[d] - (window[d] - 1) * dil[d] - 1) // strides[d] + 1
                for d in range(len(window)))
    if any(o <= 0 for o in out):
        raise ctx.error(f"the {what} {tuple(window)} does not fit the padded input "
                        f"{tuple(spatial)}")
    return out


def pad_stage(em, x: Tensor | Stage, begin, end, fill: float = 0.0) -> Tensor | Stage:
    """``x`` padded by ``begin`` / ``end`` on its spatial dimensions (2 onwards)."""
    if not any(begin) and not any(end):
        return x
    ax = out_axes(len(x.shape))
    conds, src = [], list(ax[:2])
    for d, (b, e, n) in enumerate(zip(begin, end, x.shape[2:], strict=True)):
        v = ax[2 + d]
        conds += ([v >= b] if b else []) + ([v < n + b] if e else [])
        src.append(v - b)
    shape = (*x.shape[:2], *(n + b + e for n, b, e in zip(x.shape[2:], begin, end, strict=True)))
    return em.compute("pad", ax, select(all_of(*conds), x[tuple(src)], fill), shape=shape)


def _with_bias(em, y: Stage, bias: Tensor | Stage | None) -> Stage:
    if bias is None:
        return y
    ax = out_axes(len(y.shape))
    return em.compute("bias", ax, y[ax] + bias[ax[1]])


@translator("Conv", attrs=_CONV_ATTRS)
def conv(ctx: NodeContext) -> Op:
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(xs) < 3 or len(ws) != len(xs):
        raise ctx.error(f"input {xs} and weights {ws}: expected N x C x spatial and M x C/g x k")
    k = len(xs) - 2
    groups = int(ctx.attr("group", 1))
    n, c, m, cg = xs[0], xs[1], ws[0], ws[1]
    if c % groups or m % groups or c // groups != cg:
        raise ctx.error(f"group={groups} does not fit {c} input channels, weights {ws}")
    strides, dil, pb, pe = geometry(ctx, xs[2:], ws[2:])
    out = window_outputs(ctx, xs[2:], ws[2:], strides, dil, pb, pe, "kernel")
    shape = (n, m, *out)
    has_bias = ctx.has(2)

    def emit(em, ts):
        x, w = ts[0], ts[1]
        p = pad_stage(em, x, pb, pe)
        ax = out_axes(2 + k)
        rc = Var("rc")
        rs = out_axes(k, "r")
        chan = rc if groups == 1 else (ax[1] // (m // groups)) * cg + rc
        src = [ax[0], chan, *(ax[2 + d] * strides[d] + rs[d] * dil[d] for d in range(k))]
        y = em.compute("conv", ax, reduce_sum(p[tuple(src)] * w[(ax[1], rc, *rs)]), shape=shape)
        return _with_bias(em, y, ts[2] if has_bias else None)

    return ctx.op("conv", ANCHOR, ctx.inputs[:3] if has_bias else ctx.inputs[:2], shape, emit)


@translator("ConvTranspose", attrs=(*_CONV_ATTRS, "output_padding", "output_shape"))
def conv_transpose(ctx: NodeContext) -> Op:
    """``y[n, m, o] = sum(x[n, c, (o + pad - r * d) / s] * w[c, m, r])`` over the taps where
    the division is exact and in range (a select), c within m's group."""
    xs, ws = ctx.shape(0), ctx.shape(1)
    if len(xs) < 3 or len(ws) != len(xs):
        raise ctx.error(f"input {xs} and weights {ws}: expected N x C x spatial and C x M/g x k")
    k = len(xs) - 2
    groups = int(ctx.attr("group", 1))
    n, c, mg = xs[0], xs[1], ws[1]
    m, cg = mg * groups, c // groups
    if c % groups or ws[0] != c:
        raise ctx.error(f"group={groups} does not fit {c} input channels, weights {ws}")
    strides, dil, pb, pe = geometry(ctx, xs[2:], ws[2:], transposed=True)
    opad = tuple(ctx.attr("output_padding", [0] * k))
    out = tuple(strides[d] * (xs[2 + d] - 1) + opad[d] + (ws[2 + d] - 1) * dil[d] + 1
                - pb[d] - pe[d] for d in range(k))
    if ctx.attr("output_shape") is not None and tuple(ctx.attr("output_shape")) != out:
        raise ctx.error(f"output_shape {ctx.attr('output_shape')} is not supported unless it "
                        f"equals the computed {out}; give pads instead")
    shape = (n, m, *out)
    has_bias = ctx.has(2)

    def emit(em, ts):
        x, w = ts[0], ts[1]
        ax = out_axes(2 + k)
        rc = Var("rc")
        rs = out_axes(k, "r")
        grp = ax[1] // mg if groups > 1 else 0
        chan = grp * cg + rc if groups > 1 else rc
        conds, src = [], [ax[0], chan]
        for d in range(k):
            t = ax[2 + d] + pb[d] - rs[d] * dil[d]
            conds += [t >= 0, eq(t % strides[d], 0), t // strides[d] < xs[2 + d]]
            src.append(t // strides[d])
        wv = w[(chan, ax[1] % mg if groups > 1 else ax[1], *rs)]
        body = select(all_of(*conds), x[tuple(src)], 0.0) * wv
        extents = {"rc": cg} | {r.name: ws[2 + d] for d, r in enumerate(rs)}
        y = em.compute("convt", ax, reduce_sum(body), shape=shape, extents=extents)
        return _with_bias(em, y, ts[2] if has_bias else None)

    if math.prod(shape) == 0:
        raise ctx.error(f"output shape {shape} is empty")
    return ctx.op("conv_transpose", ANCHOR, ctx.inputs[:3] if has_bias else ctx.inputs[:2],
                  shape, emit)
