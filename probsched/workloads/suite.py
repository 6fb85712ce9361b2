"""Suite operators written in index notation.

Every operator is one function of its shape returning a :class:`Workload`; the defaults are
DESIGN.md's shapes. Zero padding is a stage of its own (``P``), a ``select`` over the in-bounds
condition, so that the convolution reads ``P`` in bounds everywhere:

>>> print(c1d(l=8, ci=2, co=4, kernel=3, stride=2, pad=1))
workload c1d(n=1, l=8, ci=2, co=4, kernel=3, stride=2, pad=1):
  input X: float32[1, 8, 2]
  input W: float32[3, 2, 4]
  P[n, l, c]: float32[1, 10, 2] = select(l >= 1 and l < 9, X[n, l - 1, c], 0.0)
  C[n, l, co]: float32[1, 4, 4] = sum(P[n, l * 2 + rl, rc] * W[rl, rc, co]) over rl < 3, rc < 2

Layouts: activations channels-last (NWC, NHWC, NDHWC); weights W[kernel dims..., ci, co]
(HWIO), depthwise W[kh, kw, c]. The shared parts (padding, conv2d) are :mod:`.parts`'; more
operators, not benchmarked, are in :mod:`.more_ops`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.compute import Workload, WorkloadBuilder, axes
from ..ir.ops import exp, maximum, reduce_max, reduce_sum, sqrt
from .parts import check_positive, conv2d_nhwc, out_extent, padded

# ---------------------------------------------------------------- the suite


def gmm(b: int = 1, n: int = 1024, m: int = 1024, k: int = 1024) -> Workload:
    """Batched matmul ``C[b, i, j] = sum(A[b, i, k] * B[b, k, j])``."""
    wb = WorkloadBuilder("gmm", {"b": b, "n": n, "m": m, "k": k})
    A = wb.input("A", (b, n, k))
    B = wb.input("B", (b, k, m))
    vb, i, j, r = axes("b i j k")
    wb.compute("C", (vb, i, j), reduce_sum(A[vb, i, r] * B[vb, r, j]))
    return wb.build()


def c1d(
    n: int = 1,
    l: int = 256,  # noqa: E741
    ci: int = 64,
    co: int = 128,
    kernel: int = 3,
    stride: int = 2,
    pad: int = 1,
) -> Workload:
    """Conv1d NWC: ``C[n, l, co] = sum(P[n, l * stride + rl, rc] * W[rl, rc, co])``."""
    check_positive(n=n, l=l, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, l=l, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("c1d", params)
    X = wb.input("X", (n, l, ci))
    W = wb.input("W", (kernel, ci, co))
    P = padded(wb, X, "n l c", (0, pad, 0))
    vn, vl, vco, rl, rc = axes("n l co rl rc")
    ol = out_extent(l, kernel, stride, pad)
    wb.compute(
        "C",
        (vn, vl, vco),
        reduce_sum(P[vn, vl * stride + rl, rc] * W[rl, rc, vco]),
        shape=(n, ol, co),
    )
    return wb.build()


def c2d(
    n: int = 1,
    h: int = 224,
    w: int = 224,
    ci: int = 3,
    co: int = 64,
    kernel: int = 7,
    stride: int = 2,
    pad: int = 3,
    dilation: int = 1,
) -> Workload:
    """Conv2d NHWC, W[kh, kw, ci, co]:
    ``C[n, h, w, co] = sum(P[n, h * stride + rh * dilation, w * stride + rw * dilation, rc]
    * W[rh, rw, rc, co])``."""
    check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, dilation=dilation)
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    if dilation != 1:
        params["dilation"] = dilation
    wb = WorkloadBuilder("c2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    conv2d_nhwc(wb, X, W, co, stride, pad, dilation)
    return wb.build()


def dep(
    n: int = 1,
    h: int = 112,
    w: int = 112,
    c: int = 32,
    kernel: int = 3,
    stride: int = 1,
    pad: int = 1,
) -> Workload:
    """Depthwise conv2d NHWC, W[kh, kw, c]:
    ``C[n, h, w, c] = sum(P[n, h * stride + rh, w * stride + rw, c] * W[rh, rw, c])``."""
    check_positive(n=n, h=h, w=w, c=c, kernel=kernel, stride=stride)
    params = dict(n=n, h=h, w=w, c=c, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("dep", params)
    X = wb.input("X", (n, h, w, c))
    W = wb.input("W", (kernel, kernel, c))
    P = padded(wb, X, "n h w c", (0, pad, pad, 0))
    vn, vh, vw, vc, rh, rw = axes("n h w c rh rw")
    oh = out_extent(h, kernel, stride, pad)
    ow = out_extent(w, kernel, stride, pad)
    wb.compute(
        "C",
        (vn, vh, vw, vc),
        reduce_sum(P[vn, vh * stride + rh, vw * stride + rw, vc] * W[rh, rw, vc]),
        shape=(n, oh, ow, c),
    )
    return wb.build()


def nrm(n: int = 256, m: int = 256) -> Workload:
    """Matrix 2-norm (Frobenius): ``S[] = sum(A[i, j] * A[i, j])``, ``Y[] = sqrt(S[])``."""
    check_positive(n=n, m=m)
    wb = WorkloadBuilder("nrm", {"n": n, "m": m})
    A = wb.input("A", (n, m))
    i, j = axes("i j")
    S = wb.compute("S", (), reduce_sum(A[i, j] * A[i, j]))
    wb.compute("Y", (), sqrt(S[()]))
    return wb.build()


def sfm(n: int = 1024, m: int = 1024) -> Workload:
    """Softmax over the rows of ``X``: row max ``M``, ``E = exp(X - M)``, row sum ``S``,
    ``Y = E / S``."""
    check_positive(n=n, m=m)
    wb = WorkloadBuilder("sfm", {"n": n, "m": m})
    X = wb.input("X", (n, m))
    i, j = axes("i j")
    M = wb.compute("M", (i,), reduce_max(X[i, j]))
    E = wb.compute("E", (i, j), exp(X[i, j] - M[i]))
    S = wb.compute("S", (i,), reduce_sum(E[i, j]))
    wb.compute("Y", (i, j), E[i, j] / S[i])
    return wb.build()


def cbr(
    n: int = 1,
    h: int = 224,
    w: int = 224,
    ci: int = 3,
    co: int = 64,
    kernel: int = 7,
    stride: int = 2,
    pad: int = 3,
) -> Workload:
    """Conv2d NHWC (as :func:`c2d`), then bias, batch-norm scale and offset, and relu, in
    one epilogue stage: ``Y[n, h, w, co] = max((C[n, h, w, co] + bias[co]) * scale[co]
    + offset[co], 0.0)``."""
    check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("cbr", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    bias = wb.input("bias", (co,))
    scale = wb.input("scale", (co,))
    offset = wb.input("offset", (co,))
    C = conv2d_nhwc(wb, X, W, co, stride, pad)
    vn, vh, vw, vco = axes("n h w co")
    y = (C[vn, vh, vw, vco] + bias[vco]) * scale[vco] + offset[vco]
    wb.compute("Y", (vn, vh, vw, vco), maximum(y, 0.0))
    return wb.build()


# name -> (builder, DESIGN.md shape kwargs, small test shape kwargs)
SUITE: dict[str, tuple[Callable[..., Workload], dict[str, int], dict[str, int]]] = {
    "GMM": (gmm, dict(b=1, n=1024, m=1024, k=1024), dict(b=1, n=16, m=24, k=20)),
    "C1D": (
        c1d,
        dict(n=1, l=256, ci=64, co=128, kernel=3, stride=2, pad=1),
        dict(n=1, l=29, ci=5, co=7, kernel=3, stride=2, pad=1),
    ),
    "C2D": (
        c2d,
        dict(n=1, h=224, w=224, ci=3, co=64, kernel=7, stride=2, pad=3),
        dict(n=1, h=13, w=15, ci=3, co=6, kernel=5, stride=2, pad=2),
    ),
    "DEP": (
        dep,
        dict(n=1, h=112, w=112, c=32, kernel=3, stride=1, pad=1),
        dict(n=1, h=14, w=11, c=6, kernel=3, stride=1, pad=1),
    ),
    "NRM": (nrm, dict(n=256, m=256), dict(n=37, m=23)),
    "SFM": (sfm, dict(n=1024, m=1024), dict(n=19, m=33)),
    "CBR": (
        cbr,
        dict(n=1, h=224, w=224, ci=3, co=64, kernel=7, stride=2, pad=3),
        dict(n=1, h=13, w=15, ci=3, co=6, kernel=5, stride=2, pad=2),
    ),
}
