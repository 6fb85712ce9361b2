"""An op's stages emitted channels-last: the same translator's ``emit``, with its 4-D values
stored NHWC instead of NCHW, by permuting indices.

Translators write their stages in ONNX's logical layout (``x[n, c, h, w]``). To run one
channels-last, :func:`channels_last_emit` hands its 4-D inputs over as
:class:`PermutedView`\\ s (the logical shape; each load's indices permuted into the tensor
as stored) and gives it a :class:`ChannelsLastWriter`, which stores every 4-D stage NHWC,
its axes renamed so that the stage reads as if written NHWC. For a convolution:

    conv[a0, a1, a2, a3] = sum(pad[a0, a1 * s + r0, a2 * s + r1, rc] * w[r0, r1, rc, a3])

over n, h, w and the output channel, the weights stored HWIO: the suite's C2D. What is
computed is unchanged element for element; only where each element lives moves. So one
translator serves both layouts, and an op's axes (a softmax's, a reduction's, a concat's)
need no remapping by hand: they stay logical, and the views put them where the data is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ModelError
from ..ir.expr import Expr, ExprLike, Load, Var, as_expr, substitute
from .graph import Emit, Op, Readable, StageWriter

Perm = tuple[int, ...]


def permutation(src: str, dst: str) -> Perm:
    """The axes of layout ``src`` in the order of layout ``dst`` (letters name axes):
    ``np.transpose(a, permutation("NCHW", "NHWC"))`` is ``a`` stored NHWC.

    >>> permutation("NCHW", "NHWC"), permutation("OIHW", "HWIO")
    ((0, 2, 3, 1), (2, 3, 1, 0))
    """
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise ModelError(f"layouts {src} and {dst} do not name the same axes")
    return tuple(src.index(axis) for axis in dst)


NHWC = permutation("NCHW", "NHWC")


def inverse(perm: Sequence[int]) -> Perm:
    """The permutation undoing ``perm``: ``inverse((0, 2, 3, 1)) == (0, 3, 1, 2)``."""
    out = [0] * len(perm)
    for k, p in enumerate(perm):
        out[p] = k
    return tuple(out)


def permuted(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    """The shape of an array of ``shape`` transposed by ``perm``."""
    return tuple(shape[p] for p in perm)


class PermutedView:
    """A tensor or stage stored permuted (``stored = logical.transpose(perm)``), read at
    logical indices: ``view[n, c, h, w]`` loads ``stored[n, h, w, c]`` for the NHWC perm."""

    __slots__ = ("perm", "stored")

    def __init__(self, stored: Readable, perm: Perm):
        if len(perm) != len(stored.shape):
            raise ModelError(f"a permutation of {len(perm)} axes for a tensor of shape "
                             f"{stored.shape}")
        self.stored = stored
        self.perm = perm

    @property
    def shape(self) -> tuple[int, ...]:
        return permuted(self.stored.shape, inverse(self.perm))

    def __getitem__(self, idx: ExprLike | tuple[ExprLike, ...]) -> Load:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != len(self.perm):
            raise ModelError(f"a view of shape {self.shape} indexed with {len(idx)} indices")
        return self.stored[tuple(idx[p] for p in self.perm)]


class ChannelsLastWriter:
    """A :class:`~.graph.StageWriter` storing the 4-D stages it is given NHWC (and passing
    the others through): stored axis ``k`` iterates logical axis ``NHWC[k]`` and takes the
    name of logical axis ``k``, so the stage prints as an NHWC one. It returns a view of the
    stage at logical indices, for the op's later stages to read."""

    def __init__(self, writer: StageWriter):
        self.writer = writer

    def compute(self, base: str, index: Sequence, value: ExprLike | Expr,
                **kw: Any) -> Readable:
        if len(index) != len(NHWC):
            return self.writer.compute(base, index, value, **kw)
        names = [a.name if isinstance(a, Var) else str(a) for a in index]
        rename = {names[p]: Var(names[k]) for k, p in enumerate(NHWC)}
        if kw.get("shape") is not None:
            kw["shape"] = permuted(kw["shape"], NHWC)
        if kw.get("extents"):
            kw["extents"] = {(rename[a].name if a in rename else a): n
                             for a, n in kw["extents"].items()}
        stage = self.writer.compute(base, [Var(n) for n in names],
                                    substitute(as_expr(value), rename), **kw)
        return PermutedView(stage, NHWC)


def channels_last_emit(op: Op, input_perms: Sequence[Perm | None]) -> Emit:
    """``op``'s emit run channels-last: input ``i`` is read through a view of
    ``input_perms[i]`` (None: as it is, a lower-rank operand such as a bias), its 4-D stages
    are stored NHWC. A permutation that does not fit its input is a ModelError naming the
    node."""
    if len(input_perms) != len(op.inputs):
        raise ModelError(f"node {op.node!r} ({op.kind}): {len(input_perms)} permutations for "
                         f"{len(op.inputs)} inputs")

    def run(writer: StageWriter, tensors: Sequence[Readable]) -> Readable:
        views = []
        for v, t, p in zip(op.inputs, tensors, input_perms, strict=True):
            if p is not None and len(p) != len(t.shape):
                raise ModelError(f"node {op.node!r} ({op.kind}): input {v!r} of shape "
                                 f"{t.shape} cannot be read through a permutation of "
                                 f"{len(p)} axes")
            views.append(t if p is None else PermutedView(t, p))
        out = op.emit(ChannelsLastWriter(writer), views)
        return out.stored if isinstance(out, PermutedView) else out

    return run
