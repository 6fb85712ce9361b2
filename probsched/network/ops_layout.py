"""Layout ops, injective: Transpose, Reshape, Flatten, Squeeze, Unsqueeze (all reshapes of
the same element order), Concat and Slice. Shapes, axes, starts and ends must be constants.

A reshape reads its input through index arithmetic kept small: the dimensions of one and the
other are matched in groups of equal size (``768 = 12 * 64``), and only within a group is an
index flattened and split again (``X[a0, a1 * 64 + a2]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..ir.expr import Const, Expr, Var
from ..ir.ops import select
from .graph import INJECTIVE, Op, PermuteOp
from .indexing import out_axes
from .node import NodeContext, translator


def reshape_index(src: Sequence[int], dst: Sequence[int], ax: Sequence[Var]) -> tuple[Expr, ...]:
    """The index into a tensor of shape ``src`` of element ``ax`` of its reshape to ``dst``."""
    ins = [d for d, n in enumerate(src) if n != 1]
    outs = [d for d, n in enumerate(dst) if n != 1]
    idx: list[Expr] = [Const(0)] * len(src)
    i = j = 0
    while i < len(ins):
        gi, gj = [ins[i]], [outs[j]]
        pi, pj = src[ins[i]], dst[outs[j]]
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj:
                gi.append(ins[i])
                pi, i = pi * src[ins[i]], i + 1
            else:
                gj.append(outs[j])
                pj, j = pj * dst[outs[j]], j + 1
        linear: Expr = Const(0)
        for d in gj:
            linear = linear * dst[d] + ax[d]
        stride = pi
        for k, d in enumerate(gi):
            stride //= src[d]
            part = linear // stride if stride > 1 else linear
            idx[d] = part % src[d] if k else part
    return tuple(idx)


def reshape_op(ctx: NodeContext, shape: Sequence[int]) -> Op:
    """The op copying input 0 into ``shape`` (same number of elements, same order)."""
    src, dst = ctx.shape(0), tuple(int(s) for s in shape)
    if math.prod(src) != math.prod(dst):
        raise ctx.error(f"cannot reshape {src} ({math.prod(src)} elements) into {dst}")

    def emit(em, ts):
        ax = out_axes(len(dst))
        return em.compute("reshape", ax, ts[0][reshape_index(src, dst, ax)], shape=dst)

    return ctx.op("reshape", INJECTIVE, ctx.inputs[:1], dst, emit)


@translator("Reshape", attrs=("allowzero",))
def reshape(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    want = [int(s) for s in ctx.need_const(1, "shape").reshape(-1)]
    allow_zero = bool(ctx.attr("allowzero", 0))
    out = [src[d] if s == 0 and not allow_zero else s for d, s in enumerate(want)]
    if out.count(-1) > 1:
        raise ctx.error(f"shape {want} has more than one -1")
    if -1 in out:
        known = math.prod(s for s in out if s != -1)
        out[out.index(-1)] = math.prod(src) // known if known else 0
    return reshape_op(ctx, out)


@translator("Flatten", attrs=("axis",))
def flatten(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    axis = int(ctx.attr("axis", 1))
    axis = axis % len(src) if axis != len(src) else axis
    return reshape_op(ctx, (math.prod(src[:axis]), math.prod(src[axis:])))


def _axes_of(ctx: NodeContext, rank: int) -> list[int] | None:
    axes = ctx.attr("axes")
    if axes is None and ctx.has(1):
        axes = [int(a) for a in ctx.need_const(1, "axes").reshape(-1)]
    return None if axes is None else sorted(ctx.axis(int(a), rank) for a in axes)


@translator("Squeeze", attrs=("axes",))
def squeeze(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    axes = _axes_of(ctx, len(src))
    if axes is None:
        axes = [d for d, n in enumerate(src) if n == 1]
    if any(src[d] != 1 for d in axes):
        raise ctx.error(f"cannot squeeze axes {axes} of shape {src}")
    return reshape_op(ctx, [n for d, n in enumerate(src) if d not in axes])


@translator("Unsqueeze", attrs=("axes",))
def unsqueeze(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    raw = ctx.attr("axes")
    if raw is None:
        raw = [int(a) for a in ctx.need_const(1, "axes").reshape(-1)]
    axes = sorted(ctx.axis(int(a), len(src) + len(raw)) for a in raw)
    out, it = [], iter(src)
    for d in range(len(src) + len(axes)):
        out.append(1 if d in axes else next(it))
    return reshape_op(ctx, out)


def permute_op(node: str, kind: str, source: str, output: str, src_shape: Sequence[int],
               perm: Sequence[int]) -> PermuteOp:
    """The op writing ``output = source.transpose(perm)`` (``source`` of ``src_shape``), one
    injective stage named ``kind``."""
    perm = tuple(int(p) for p in perm)
    shape = tuple(src_shape[p] for p in perm)

    def emit(em, ts):
        ax = out_axes(len(shape))
        idx: list[Expr] = [Const(0)] * len(src_shape)
        for k, p in enumerate(perm):
            idx[p] = ax[k]
        return em.compute(kind, ax, ts[0][tuple(idx)], shape=shape)

    return PermuteOp(node, kind, INJECTIVE, (source,), output, shape, emit, perm=perm)


@translator("Transpose", attrs=("perm",))
def transpose(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    perm = [int(p) for p in ctx.attr("perm", list(reversed(range(len(src)))))]
    if sorted(perm) != list(range(len(src))):
        raise ctx.error(f"perm {perm} is not a permutation of {len(src)} axes")
    return permute_op(ctx.name, "transpose", ctx.inputs[0], ctx.output, src, perm)


@translator("Concat", attrs=("axis",))
def concat(ctx: NodeContext) -> Op:
    shapes = [ctx.shape(i) for i in range(len(ctx.inputs))]
    rank = len(shapes[0])
    axis = ctx.axis(int(ctx.attr("axis", 0)), rank)
    for s in shapes:
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != axis):
            raise ctx.error(f"shapes {shapes} do not concatenate along axis {axis}")
    sizes = [s[axis] for s in shapes]
    shape = (*shapes[0][:axis], sum(sizes), *shapes[0][axis + 1:])

    def emit(em, ts):
        ax = out_axes(rank)
        offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        v: Expr = ts[-1][(*ax[:axis], ax[axis] - offsets[-1], *ax[axis + 1:])]
        for t, off, n in reversed(list(zip(ts[:-1], offsets, sizes, strict=False))):
            here = t[(*ax[:axis], ax[axis] - off, *ax[axis + 1:])]
            v = select(ax[axis] < off + n, here, v)
        return em.compute("concat", ax, v, shape=shape)

    return ctx.op("concat", INJECTIVE, ctx.inputs, shape, emit)


@translator("Slice")
def slice_(ctx: NodeContext) -> Op:
    src = ctx.shape(0)
    starts = [int(v) for v in ctx.need_const(1, "starts").reshape(-1)]
    ends = [int(v) for v in ctx.need_const(2, "ends").reshape(-1)]
    axes = ([int(v) for v in ctx.need_const(3, "axes").reshape(-1)] if ctx.has(3)
            else list(range(len(starts))))
    steps = [int(v) for v in ctx.need_const(4, "steps").reshape(-1)] if ctx.has(4) \
        else [1] * len(starts)
    first, step = [0] * len(src), [1] * len(src)
    shape = list(src)
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        d = ctx.axis(a, len(src))
        if st == 0:
            raise ctx.error("a step of 0")
        r = range(src[d])[slice(s, e, st)]
        if len(r) == 0:
            raise ctx.error(f"slice {s}:{e}:{st} of axis {d} (extent {src[d]}) is empty")
        first[d], step[d], shape[d] = r.start, st, len(r)

    def emit(em, ts):
        ax = out_axes(len(shape))
        idx = tuple(ax[d] * step[d] + first[d] for d in range(len(src)))
        return em.compute("slice", ax, ts[0][idx], shape=tuple(shape))

    return ctx.op("slice", INJECTIVE, ctx.inputs[:1], shape, emit)
