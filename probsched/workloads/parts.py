"""Parts the operators share: argument checks, output extents, and the two stages several
operators build on: zero padding and the (grouped, dilated, strided) conv2d.

Zero padding is a stage of its own (``P``), a ``select`` over the in-bounds condition, so
that a convolution reads ``P`` in bounds everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import WorkloadError
from ..ir.compute import Stage, Tensor, WorkloadBuilder, axes
from ..ir.ops import all_of, reduce_sum, select


def out_extent(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output positions of a convolution along one dimension."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        raise WorkloadError(
            f"kernel {kernel} (dilation {dilation}) does not fit an input of {size} padded by {pad}"
        )
    return out


def check_positive(**params: int) -> None:
    """Raise ``WorkloadError`` naming the first parameter that is not a positive integer."""
    for name, value in params.items():
        if not isinstance(value, int) or value <= 0:
            raise WorkloadError(f"'{name}' must be a positive integer, got {value!r}")


def padded(wb: WorkloadBuilder, x: Tensor, names: str, pads: Sequence[int]) -> Tensor | Stage:
    """Stage ``P``: ``x`` zero-padded by ``pads[d]`` on both sides of dimension ``d``
    (``x`` itself when nothing is padded)."""
    if any(p < 0 for p in pads):
        raise WorkloadError(f"padding {tuple(pads)} must not be negative")
    if not any(pads):
        return x
    idx = axes(names)
    conds, src = [], []
    for v, p, n in zip(idx, pads, x.shape, strict=True):
        if p:
            conds += [v >= p, v < n + p]
            src.append(v - p)
        else:
            src.append(v)
    shape = tuple(n + 2 * p for n, p in zip(x.shape, pads, strict=True))
    return wb.compute("P", idx, select(all_of(*conds), x[tuple(src)], 0.0), shape=shape)


def conv2d_nhwc(
    wb: WorkloadBuilder,
    X: Tensor,
    W: Tensor,
    co: int,
    stride: int,
    pad: int,
    dilation: int = 1,
    groups: int = 1,
) -> Stage:
    """Stage ``C`` (after the padding stage ``P``): grouped, dilated, strided conv2d NHWC."""
    n, h, w, ci = X.shape
    kh, kw = W.shape[:2]
    P = padded(wb, X, "n h w c", (0, pad, pad, 0))
    vn, vh, vw, vco, rh, rw, rc = axes("n h w co rh rw rc")
    # Input channel of reduction step rc for output channel co: rc within co's group.
    chan = rc if groups == 1 else (vco // (co // groups)) * (ci // groups) + rc
    body = P[vn, vh * stride + rh * dilation, vw * stride + rw * dilation, chan]
    oh = out_extent(h, kh, stride, pad, dilation)
    ow = out_extent(w, kw, stride, pad, dilation)
    return wb.compute(
        "C", (vn, vh, vw, vco), reduce_sum(body * W[rh, rw, rc, vco]), shape=(n, oh, ow, co)
    )
