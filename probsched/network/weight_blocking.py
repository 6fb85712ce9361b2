"""Matmul and convolution weights packed once at load: a constant ``B[k, j]`` becomes
``B'[j // 16, k, j % 16]``, a convolution's ``W[kh, kw, ci, co]`` ``W'[co // 16, kh, kw, ci,
co % 16]``.

A matmul tile reads B's columns a few vectors wide down a panel of k rows. Row-major, that
panel is ``k`` pieces of 64 bytes ``N * 4`` bytes apart (12 KiB for BERT's feed-forward
weight), each its own cache line and, past 4 KiB, its own page; blocked, it is one contiguous
run that the prefetcher streams. Packing inside the kernel (``cache_read``) pays the copy on
every call; a constant is packed here, once (item 4 of the whole-models issue allows
transforming a weight's layout at load). On the Intel AVX-512 host a 128 x 768 x 3072 matmul
tuned 200 trials reached 377 GFLOP/s blocked against 293 row-major.

The op keeps its translator's emit: it reads the blocked constant through :class:`Blocked`,
a view that has the weight's logical shape and turns ``B[k, j]`` into the blocked load, so
MatMul, Gemm (``transB`` too: the column axis is found, not assumed) and Conv (its HWIO
constant, grouped and depthwise too) need nothing of their own. A weight is blocked only
where the op's reduction reads it with its output's last axis ``j`` alone at one position
(``B[r, j]``, ``B[j, r]``, ``W[r0, r1, rc, j]``), ``j``'s extent a multiple of
:data:`BLOCK`; shared by several ops, it is packed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..ir import expr as E
from ..ir.compute import Stage
from .graph import Emit, Emitter, Graph, Op, Readable

BLOCK = 16
"""Columns per block: one AVX-512 vector of float32 (two of AVX2's)."""


class Blocked:
    """``t`` (the packed weight) read as the ``shape`` weight it was packed from, whose
    column axis is ``axis``: ``W[..., j, ...]`` is ``t[j // BLOCK, ..., j % BLOCK]``."""

    def __init__(self, t: Readable, axis: int, shape: tuple[int, ...]):
        self.t, self.axis, self.shape = t, axis, shape

    def __getitem__(self, idx) -> E.Load:
        j = idx[self.axis]
        rest = tuple(ix for d, ix in enumerate(idx) if d != self.axis)
        return self.t[(j // BLOCK, *rest, j % BLOCK)]


def blocked_array(w: np.ndarray, axis: int) -> np.ndarray:
    """``w`` packed on its column axis ``axis``: shape ``[n // BLOCK, *others, BLOCK]``.

    >>> blocked_array(np.arange(64.0).reshape(2, 32), 1)[1, 0, :3]
    array([16., 17., 18.])
    """
    last = np.moveaxis(w, axis, -1)
    split = last.reshape(*last.shape[:-1], last.shape[-1] // BLOCK, BLOCK)
    return np.ascontiguousarray(np.moveaxis(split, -2, 0))


ANCHORS = frozenset({"matmul", "conv"})
"""Ops whose input 1, a constant, may be blocked: MatMul / Gemm's B, Conv's HWIO weight."""


def column_axis(graph: Graph, op: Op) -> int | None:
    """The axis of ``op``'s input 1 that is its output's columns, where it can be blocked."""
    if op.kind not in ANCHORS or len(op.inputs) < 2 or op.inputs[1] not in graph.constants:
        return None
    shape = graph.shape(op.inputs[1])
    if len(shape) < 2 or not op.shape:
        return None
    em = Emitter("probe")
    ins = [em.input(graph.shape(v)) for v in op.inputs]
    op.emit(em, ins)
    wl = em.wb.build()
    found: set[int] = set()
    for st in wl.stages:
        reads = [ld for ld in E.loads(st.body) if ld.tensor == ins[1].name]
        if reads and not _reads_columns(st, reads, found):
            return None
    if len(found) != 1:
        return None
    axis = found.pop()
    return axis if shape[axis] % BLOCK == 0 else None


def _reads_columns(st: Stage, reads: Sequence[E.Load], found: set[int]) -> bool:
    """Whether reduction ``st`` reads the weight with its last axis ``j`` alone at one
    position of every load (noted in ``found``) and nowhere else."""
    if not st.reduce_axes:
        return False
    j = E.Var(st.axes[-1])
    for ld in reads:
        at = [d for d, ix in enumerate(ld.indices) if ix == j]
        others = [ix for d, ix in enumerate(ld.indices) if d not in at]
        if len(at) != 1 or any(st.axes[-1] in E.free_vars(ix) for ix in others):
            return False
        found.add(at[0])
    return True


def _reading_blocked(emit: Emit, axis: int, shape: tuple[int, ...]) -> Emit:
    def emit_blocked(em, ts):
        return emit(em, [ts[0], Blocked(ts[1], axis, shape), *ts[2:]])
    return emit_blocked


def block_weights(graph: Graph) -> Graph:
    """``graph`` with its matmuls' and convolutions' constant weights blocked (see the
    module); the unblocked constants stay for other readers (unused ones are dropped later)."""
    constants = dict(graph.constants)
    ops = []
    for op in graph.ops:
        axis = column_axis(graph, op)
        if axis is not None:
            v = op.inputs[1]
            name = f"{v}:blocked{BLOCK}"
            if name not in constants:
                constants[name] = blocked_array(graph.constants[v], axis)
            op = replace(op, inputs=(op.inputs[0], name, *op.inputs[2:]),
                         emit=_reading_blocked(op.emit, axis, graph.shape(v)))
        ops.append(op)
    return replace(graph, ops=ops, constants=constants)
