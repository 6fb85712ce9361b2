"""Elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Pow (constant exponent),
Relu, Clip, Sigmoid, Tanh, Erf, Exp, Sqrt, Neg, Abs, Identity, and BatchNormalization
outside a convolution (a per-channel scale and shift, computed at import). Each is one
injective stage; a one-element constant operand is folded into the expression."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir.expr import Expr
from ..ir.ops import absolute, erf, exp, log, maximum, minimum, sqrt, tanh
from .graph import INJECTIVE, Op
from .indexing import bload, broadcast, out_axes
from .node import NodeContext, translator

_BINARY: dict[str, tuple[str, Callable[[Expr, Expr], Expr]]] = {
    "Add": ("add", lambda a, b: a + b),
    "Sub": ("sub", lambda a, b: a - b),
    "Mul": ("mul", lambda a, b: a * b),
    "Div": ("div", lambda a, b: a / b),
}
_UNARY: dict[str, tuple[str, Callable[[Expr], Expr]]] = {
    "Relu": ("relu", lambda x: maximum(x, 0.0)),
    "Sigmoid": ("sigmoid", lambda x: 1.0 / (1.0 + exp(0.0 - x))),
    "Tanh": ("tanh", tanh),
    "Erf": ("erf", erf),
    "Exp": ("exp", exp),
    "Sqrt": ("sqrt", sqrt),
    "Neg": ("neg", lambda x: 0.0 - x),
    "Abs": ("abs", absolute),
    "Identity": ("copy", lambda x: x),
}


def elementwise(ctx: NodeContext, kind: str, fn: Callable[..., Expr], n: int) -> Op:
    """The op of ``fn`` applied to inputs ``0..n-1`` (broadcast), one-element constants
    folded in."""
    scalars = [ctx.scalar(i) for i in range(n)]
    names = [ctx.inputs[i] for i in range(n) if scalars[i] is None]
    shape = broadcast(ctx, [ctx.shape(i) for i in range(n)])

    def emit(em, ts):
        ax = out_axes(len(shape))
        it = iter(ts)
        vals = [bload(next(it), ax) if s is None else s for s in scalars]
        return em.compute(kind, ax, fn(*vals), shape=shape)

    return ctx.op(kind, INJECTIVE, names, shape, emit)


@translator(*_BINARY)
def binary(ctx: NodeContext) -> Op:
    kind, fn = _BINARY[ctx.op_type]
    return elementwise(ctx, kind, fn, 2)


@translator(*_UNARY)
def unary(ctx: NodeContext) -> Op:
    kind, fn = _UNARY[ctx.op_type]
    return elementwise(ctx, kind, fn, 1)


@translator("Pow")
def power(ctx: NodeContext) -> Op:
    """``x ** p`` for a constant scalar ``p``: products for 1, 2, 3, ``sqrt`` for 0.5,
    their reciprocals for -1 and -0.5, else ``exp(p * log(x))`` (defined for x > 0)."""
    p = ctx.scalar(1)
    if p is None:
        raise ctx.error("the exponent must be a constant scalar")
    special: dict[float, Callable[[Expr], Expr]] = {
        1.0: lambda x: x, 2.0: lambda x: x * x, 3.0: lambda x: x * x * x, 0.5: sqrt,
        -1.0: lambda x: 1.0 / x, -0.5: lambda x: 1.0 / sqrt(x), 0.0: lambda x: x * 0.0 + 1.0,
    }
    fn = special.get(p, lambda x: exp(log(x) * p))
    return elementwise(ctx, "pow", lambda x, _p: fn(x), 2)


@translator("Clip")
def clip(ctx: NodeContext) -> Op:
    """``min(max(x, lo), hi)``, the bounds constant inputs 1 and 2 (either left out)."""
    bounds: list[float | None] = []
    for i in (1, 2):
        if ctx.has(i):
            v = ctx.scalar(i)
            if v is None:
                raise ctx.error(f"the {'min' if i == 1 else 'max'} bound must be a constant scalar")
            bounds.append(v)
        else:
            bounds.append(None)
    lo, hi = bounds

    def fn(x: Expr) -> Expr:
        if lo is not None:
            x = maximum(x, lo)
        return x if hi is None else minimum(x, hi)

    return elementwise(ctx, "clip", fn, 1)


@translator("BatchNormalization", attrs=("epsilon", "momentum", "training_mode"))
def batch_norm(ctx: NodeContext) -> Op:
    """Inference batch norm: ``x * s[c] + t[c]`` with ``s = scale / sqrt(var + eps)`` and
    ``t = bias - mean * s`` computed at import (after a Conv it folds into the weights
    instead: :mod:`.folding`)."""
    ctx.attr("momentum")
    if ctx.attr("training_mode", 0):
        raise ctx.error("training_mode=1 is not supported (inference only)")
    scale, shift = bn_scale_shift(ctx)
    rank = len(ctx.shape(0))
    if rank < 2:
        raise ctx.error(f"input of rank {rank}; expected N x C x ...")
    ctx.graph.constants[f"{ctx.name}:scale"] = scale
    ctx.graph.constants[f"{ctx.name}:shift"] = shift
    shape = ctx.shape(0)

    def emit(em, ts):
        x, s, t = ts
        ax = out_axes(len(shape))
        return em.compute("bn", ax, x[ax] * s[ax[1]] + t[ax[1]], shape=shape)

    return ctx.op("bn", INJECTIVE, [ctx.inputs[0], f"{ctx.name}:scale", f"{ctx.name}:shift"],
                  shape, emit)


def bn_scale_shift(ctx: NodeContext) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel scale and shift of a BatchNormalization node's constants."""
    gamma, beta, mean, var = (ctx.need_const(i, what).astype(np.float64) for i, what in
                              enumerate(("scale", "bias", "mean", "var"), start=1))
    s = gamma / np.sqrt(var + float(ctx.attr("epsilon", 1e-5)))
    return s.astype(np.float32), (beta - mean * s).astype(np.float32)
