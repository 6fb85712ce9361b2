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
(HWIO), depthwise W[kh, kw, c]. The operators after ``SUITE`` are not benchmarked; they show
that the compute language expresses them with the same builders.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import WorkloadError
from ..ir.compute import Stage, Tensor, Workload, WorkloadBuilder, axes
from ..ir.expr import all_of, eq, exp, maximum, reduce_max, reduce_sum, select, sqrt


def _out_extent(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output positions of a convolution along one dimension."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        raise WorkloadError(
            f"kernel {kernel} (dilation {dilation}) does not fit an input of {size} padded by {pad}"
        )
    return out


def _check_positive(**params: int) -> None:
    for name, value in params.items():
        if not isinstance(value, int) or value <= 0:
            raise WorkloadError(f"'{name}' must be a positive integer, got {value!r}")


def _pad(wb: WorkloadBuilder, x: Tensor, names: str, pads: Sequence[int]) -> Tensor | Stage:
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
    _check_positive(n=n, l=l, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, l=l, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("c1d", params)
    X = wb.input("X", (n, l, ci))
    W = wb.input("W", (kernel, ci, co))
    P = _pad(wb, X, "n l c", (0, pad, 0))
    vn, vl, vco, rl, rc = axes("n l co rl rc")
    ol = _out_extent(l, kernel, stride, pad)
    wb.compute(
        "C",
        (vn, vl, vco),
        reduce_sum(P[vn, vl * stride + rl, rc] * W[rl, rc, vco]),
        shape=(n, ol, co),
    )
    return wb.build()


def _conv2d_nhwc(
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
    P = _pad(wb, X, "n h w c", (0, pad, pad, 0))
    vn, vh, vw, vco, rh, rw, rc = axes("n h w co rh rw rc")
    # Input channel of reduction step rc for output channel co: rc within co's group.
    chan = rc if groups == 1 else (vco // (co // groups)) * (ci // groups) + rc
    body = P[vn, vh * stride + rh * dilation, vw * stride + rw * dilation, chan]
    oh = _out_extent(h, kh, stride, pad, dilation)
    ow = _out_extent(w, kw, stride, pad, dilation)
    return wb.compute(
        "C", (vn, vh, vw, vco), reduce_sum(body * W[rh, rw, rc, vco]), shape=(n, oh, ow, co)
    )


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
    _check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, dilation=dilation)
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    if dilation != 1:
        params["dilation"] = dilation
    wb = WorkloadBuilder("c2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    _conv2d_nhwc(wb, X, W, co, stride, pad, dilation)
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
    _check_positive(n=n, h=h, w=w, c=c, kernel=kernel, stride=stride)
    params = dict(n=n, h=h, w=w, c=c, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("dep", params)
    X = wb.input("X", (n, h, w, c))
    W = wb.input("W", (kernel, kernel, c))
    P = _pad(wb, X, "n h w c", (0, pad, pad, 0))
    vn, vh, vw, vc, rh, rw = axes("n h w c rh rw")
    oh = _out_extent(h, kernel, stride, pad)
    ow = _out_extent(w, kernel, stride, pad)
    wb.compute(
        "C",
        (vn, vh, vw, vc),
        reduce_sum(P[vn, vh * stride + rh, vw * stride + rw, vc] * W[rh, rw, vc]),
        shape=(n, oh, ow, c),
    )
    return wb.build()


def nrm(n: int = 256, m: int = 256) -> Workload:
    """Matrix 2-norm (Frobenius): ``S[] = sum(A[i, j] * A[i, j])``, ``Y[] = sqrt(S[])``."""
    _check_positive(n=n, m=m)
    wb = WorkloadBuilder("nrm", {"n": n, "m": m})
    A = wb.input("A", (n, m))
    i, j = axes("i j")
    S = wb.compute("S", (), reduce_sum(A[i, j] * A[i, j]))
    wb.compute("Y", (), sqrt(S[()]))
    return wb.build()


def sfm(n: int = 1024, m: int = 1024) -> Workload:
    """Softmax over the rows of ``X``: row max ``M``, ``E = exp(X - M)``, row sum ``S``,
    ``Y = E / S``."""
    _check_positive(n=n, m=m)
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
    _check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("cbr", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    bias = wb.input("bias", (co,))
    scale = wb.input("scale", (co,))
    offset = wb.input("offset", (co,))
    C = _conv2d_nhwc(wb, X, W, co, stride, pad)
    vn, vh, vw, vco = axes("n h w co")
    y = (C[vn, vh, vw, vco] + bias[vco]) * scale[vco] + offset[vco]
    wb.compute("Y", (vn, vh, vw, vco), maximum(y, 0.0))
    return wb.build()


# name -> (builder, DESIGN.md shape kwargs, small test shape kwargs)
SUITE = {
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


# ---------------------------------------------------------------- more operators


def batch_matmul(
    b: int = 1,
    n: int = 1024,
    m: int = 1024,
    k: int = 1024,
    transpose_a: bool = False,
    transpose_b: bool = False,
) -> Workload:
    """``C[b, i, j] = sum(A[b, i, k] * B[b, k, j])`` with A stored as [b, k, n] when
    ``transpose_a`` and B as [b, m, k] when ``transpose_b``."""
    _check_positive(b=b, n=n, m=m, k=k)
    params = dict(b=b, n=n, m=m, k=k, transpose_a=int(transpose_a), transpose_b=int(transpose_b))
    wb = WorkloadBuilder("batch_matmul", params)
    A = wb.input("A", (b, k, n) if transpose_a else (b, n, k))
    B = wb.input("B", (b, m, k) if transpose_b else (b, k, m))
    vb, i, j, r = axes("b i j k")
    a = A[vb, r, i] if transpose_a else A[vb, i, r]
    bb = B[vb, j, r] if transpose_b else B[vb, r, j]
    wb.compute("C", (vb, i, j), reduce_sum(a * bb))
    return wb.build()


def grouped_conv2d(
    n: int = 1,
    h: int = 56,
    w: int = 56,
    ci: int = 64,
    co: int = 128,
    kernel: int = 3,
    stride: int = 2,
    pad: int = 1,
    groups: int = 4,
) -> Workload:
    """Grouped conv2d NHWC, W[kh, kw, ci / groups, co]; output channel ``co`` reads input
    channels ``(co // (co_total / groups)) * (ci / groups) + rc``."""
    _check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, groups=groups)
    if ci % groups or co % groups:
        raise WorkloadError(f"groups={groups} must divide ci={ci} and co={co}")
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad, groups=groups)
    wb = WorkloadBuilder("grouped_conv2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci // groups, co))
    _conv2d_nhwc(wb, X, W, co, stride, pad, groups=groups)
    return wb.build()


def dilated_conv2d(
    n: int = 1,
    h: int = 224,
    w: int = 224,
    ci: int = 3,
    co: int = 64,
    kernel: int = 7,
    stride: int = 2,
    pad: int = 3,
    dilation: int = 2,
) -> Workload:
    """Dilated conv2d NHWC: :func:`c2d` with kernel taps ``dilation`` apart."""
    _check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, dilation=dilation)
    params = dict(
        n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad, dilation=dilation
    )
    wb = WorkloadBuilder("dilated_conv2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    _conv2d_nhwc(wb, X, W, co, stride, pad, dilation)
    return wb.build()


def transposed_conv2d(
    n: int = 1,
    h: int = 4,
    w: int = 4,
    ci: int = 512,
    co: int = 256,
    kernel: int = 4,
    stride: int = 2,
    pad: int = 1,
    output_padding: int = 0,
) -> Workload:
    """Transposed conv2d (deconvolution) NHWC, W[kh, kw, ci, co]: the gradient of a strided
    conv2d. Output extent ``(h - 1) * stride - 2 * pad + kernel + output_padding``.

    Written as TVM does: ``P`` spreads the input ``stride`` apart and pads it by
    ``kernel - 1 - pad`` (a select on divisibility), then a stride-1 conv with the flipped
    kernel ``W[kernel - 1 - rh, kernel - 1 - rw, rc, co]``.
    """
    _check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
    if not 0 <= pad <= kernel - 1:
        raise WorkloadError(f"pad={pad} must be in 0..kernel - 1 = {kernel - 1}")
    if not 0 <= output_padding < stride:
        raise WorkloadError(f"output_padding={output_padding} must be in 0..stride - 1")
    params = dict(
        n=n,
        h=h,
        w=w,
        ci=ci,
        co=co,
        kernel=kernel,
        stride=stride,
        pad=pad,
        output_padding=output_padding,
    )
    wb = WorkloadBuilder("transposed_conv2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    border = kernel - 1 - pad
    oh = (h - 1) * stride - 2 * pad + kernel + output_padding
    ow = (w - 1) * stride - 2 * pad + kernel + output_padding
    vn, vh, vw, vc = axes("n h w c")
    sh, sw = vh - border, vw - border  # position in the spread-out input
    # (``==`` on expressions is structural equality; conditions use eq().)
    inside = all_of(
        sh >= 0,
        eq(sh % stride, 0),
        sh // stride < h,
        sw >= 0,
        eq(sw % stride, 0),
        sw // stride < w,
    )
    P = wb.compute(
        "P",
        (vn, vh, vw, vc),
        select(inside, X[vn, sh // stride, sw // stride, vc], 0.0),
        shape=(n, oh + kernel - 1, ow + kernel - 1, ci),
    )
    vco, rh, rw, rc = axes("co rh rw rc")
    flipped = W[kernel - 1 - rh, kernel - 1 - rw, rc, vco]
    wb.compute(
        "C",
        (vn, vh, vw, vco),
        reduce_sum(P[vn, vh + rh, vw + rw, rc] * flipped),
        shape=(n, oh, ow, co),
        extents={"rh": kernel, "rw": kernel},
    )
    return wb.build()


def conv3d(
    n: int = 1,
    d: int = 16,
    h: int = 224,
    w: int = 224,
    ci: int = 3,
    co: int = 64,
    kernel: int = 7,
    stride: int = 2,
    pad: int = 3,
) -> Workload:
    """Conv3d NDHWC, W[kd, kh, kw, ci, co]."""
    _check_positive(n=n, d=d, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, d=d, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("conv3d", params)
    X = wb.input("X", (n, d, h, w, ci))
    W = wb.input("W", (kernel, kernel, kernel, ci, co))
    P = _pad(wb, X, "n d h w c", (0, pad, pad, pad, 0))
    vn, vd, vh, vw, vco, rd, rh, rw, rc = axes("n d h w co rd rh rw rc")
    s = stride
    body = P[vn, vd * s + rd, vh * s + rh, vw * s + rw, rc] * W[rd, rh, rw, rc, vco]
    out = tuple(_out_extent(x, kernel, stride, pad) for x in (d, h, w))
    wb.compute("C", (vn, vd, vh, vw, vco), reduce_sum(body), shape=(n, *out, co))
    return wb.build()
