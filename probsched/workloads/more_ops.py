"""More operators, not benchmarked: they show that the compute language expresses batched
matmul with transposes and grouped, dilated, transposed and 3-D convolutions with the same
builders as the suite (layouts as there: NHWC / NDHWC activations, HWIO weights).
"""

from __future__ import annotations

from ..errors import WorkloadError
from ..ir.compute import Workload, WorkloadBuilder, axes
from ..ir.ops import all_of, eq, reduce_sum, select
from .parts import check_positive, conv2d_nhwc, out_extent, padded


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
    check_positive(b=b, n=n, m=m, k=k)
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
    check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, groups=groups)
    if ci % groups or co % groups:
        raise WorkloadError(f"groups={groups} must divide ci={ci} and co={co}")
    params = dict(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad, groups=groups)
    wb = WorkloadBuilder("grouped_conv2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci // groups, co))
    conv2d_nhwc(wb, X, W, co, stride, pad, groups=groups)
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
    check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, dilation=dilation)
    params = dict(
        n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad, dilation=dilation
    )
    wb = WorkloadBuilder("dilated_conv2d", params)
    X = wb.input("X", (n, h, w, ci))
    W = wb.input("W", (kernel, kernel, ci, co))
    conv2d_nhwc(wb, X, W, co, stride, pad, dilation)
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
    check_positive(n=n, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
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
    check_positive(n=n, d=d, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride)
    params = dict(n=n, d=d, h=h, w=w, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    wb = WorkloadBuilder("conv3d", params)
    X = wb.input("X", (n, d, h, w, ci))
    W = wb.input("W", (kernel, kernel, kernel, ci, co))
    P = padded(wb, X, "n d h w c", (0, pad, pad, pad, 0))
    vn, vd, vh, vw, vco, rd, rh, rw, rc = axes("n d h w co rd rh rw rc")
    s = stride
    body = P[vn, vd * s + rd, vh * s + rh, vw * s + rw, rc] * W[rd, rh, rw, rc, vco]
    out = tuple(out_extent(x, kernel, stride, pad) for x in (d, h, w))
    wb.compute("C", (vn, vd, vh, vw, vco), reduce_sum(body), shape=(n, *out, co))
    return wb.build()
