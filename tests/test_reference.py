"""The numpy reference against independent hand-written numpy, its two evaluation paths against
each other, input validation, random inputs and the output check."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from probsched.errors import WorkloadError
from probsched.ir import reference as R
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.expr import Cast
from probsched.ir.ops import absolute, eq, exp, log, minimum, reduce_min, reduce_sum, select
from probsched.ir.reference import check_outputs, evaluate_stage, random_inputs, reference
from probsched.workloads import (
    SUITE,
    batch_matmul,
    c1d,
    conv3d,
    dilated_conv2d,
    gmm,
    grouped_conv2d,
    transposed_conv2d,
)

# ---------------------------------------------------------------- hand-written numpy


def conv_nd(x, w, stride, pad, dilation=1, groups=1):
    """Channels-last convolution, one kernel tap at a time: x[n, *spatial, ci],
    w[*kernel, ci / groups, co]."""
    nd = x.ndim - 2
    x = np.pad(x, [(0, 0)] + [(pad, pad)] * nd + [(0, 0)])
    kernel = w.shape[:nd]
    out_sp = [(x.shape[1 + d] - dilation * (kernel[d] - 1) - 1) // stride + 1 for d in range(nd)]
    co = w.shape[-1]
    cig, cog = x.shape[-1] // groups, co // groups
    out = np.zeros((x.shape[0], *out_sp, co))
    for tap in np.ndindex(*kernel):
        sl = tuple(
            slice(t * dilation, t * dilation + stride * (o - 1) + 1, stride)
            for t, o in zip(tap, out_sp, strict=True)
        )
        patch = x[(slice(None), *sl)]
        for g in range(groups):
            out[..., g * cog : (g + 1) * cog] += (
                patch[..., g * cig : (g + 1) * cig] @ w[tap][:, g * cog : (g + 1) * cog]
            )
    return out


def depthwise(x, w, stride, pad):
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    kh, kw, _ = w.shape
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    win = win[:, : (oh - 1) * stride + 1 : stride, : (ow - 1) * stride + 1 : stride]
    return np.einsum("nhwcij,ijc->nhwc", win, w)


def deconv(x, w, stride, pad, output_padding):
    """Transposed conv2d by scattering each input pixel's contribution."""
    n, h, wd, _ = x.shape
    k = w.shape[0]
    full = np.zeros(
        (
            n,
            (h - 1) * stride + k + output_padding,
            (wd - 1) * stride + k + output_padding,
            w.shape[-1],
        )
    )
    for i in range(h):
        for j in range(wd):
            full[:, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum(
                "nc,abco->nabo", x[:, i, j], w
            )
    oh = (h - 1) * stride - 2 * pad + k + output_padding
    ow = (wd - 1) * stride - 2 * pad + k + output_padding
    return full[:, pad : pad + oh, pad : pad + ow]


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def hand(name, p, ins):
    """DESIGN.md's operators in plain numpy (float64)."""
    ins = [a.astype(np.float64) for a in ins]
    if name == "GMM":
        return ins[0] @ ins[1]
    if name == "C1D":
        return conv_nd(ins[0], ins[1], p["stride"], p["pad"])
    if name == "C2D":
        return conv_nd(ins[0], ins[1], p["stride"], p["pad"], p.get("dilation", 1))
    if name == "DEP":
        return depthwise(ins[0], ins[1], p["stride"], p["pad"])
    if name == "NRM":
        return np.linalg.norm(ins[0])
    if name == "SFM":
        return softmax(ins[0])
    if name == "CBR":
        x, w, bias, scale, offset = ins
        return np.maximum((conv_nd(x, w, p["stride"], p["pad"]) + bias) * scale + offset, 0)
    raise KeyError(name)


def assert_close(out, ref, rtol=1e-5):
    ok, err, msg = check_outputs([out], [ref], rtol=rtol)
    assert ok, msg


# ---------------------------------------------------------------- the suite


@pytest.mark.parametrize("name", list(SUITE))
def test_suite_matches_hand_numpy(name):
    fn, _, small = SUITE[name]
    wl = fn(**small)
    ins = random_inputs(wl, seed=3)
    (out,) = reference(wl, *ins)
    assert out.dtype == np.float32 and out.shape == wl.output.shape
    assert_close(out, hand(name, small, ins))


@pytest.mark.parametrize("name", list(SUITE))
def test_fast_path_agrees_with_general_path(name):
    fn, _, small = SUITE[name]
    wl = fn(**small)
    env = {
        t.name: a.astype(np.float64)
        for t, a in zip(wl.inputs, random_inputs(wl, seed=5), strict=True)
    }
    for stage in wl.stages:
        fast = evaluate_stage(stage, env, fast=True)
        slow = evaluate_stage(stage, env, fast=False)
        assert fast.shape == slow.shape == stage.shape
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
        env[stage.name] = slow


def test_fast_path_is_taken_for_contractions_only():
    gm, sf = gmm(b=2, n=3, m=4, k=5), SUITE["SFM"][0](n=3, m=4)
    env = dict(zip(("A", "B"), random_inputs(gm), strict=True))
    assert R._sum_of_products(gm.output, env) is not None
    env = {"X": random_inputs(sf)[0]}
    assert R._sum_of_products(sf.stage("M"), env) is None  # max, not sum


def test_fast_path_with_constant_factor_and_unused_axis():
    wb = WorkloadBuilder("odd")
    A = wb.input("A", (3, 4))
    i, j, k = axes("i j k")
    wb.compute("C", (i, j), reduce_sum(2.0 * A[i, k] * absolute(A[i, k])), shape=(3, 5))
    wl = wb.build()
    (a,) = random_inputs(wl)
    expected = np.repeat((2.0 * a * np.abs(a)).sum(axis=1, keepdims=True), 5, axis=1)
    for fast in (True, False):
        np.testing.assert_allclose(reference(wl, a, fast=fast)[0], expected, rtol=1e-6)


def test_gmm_design_shape_is_feasible():
    wl = gmm(b=1, n=1024, m=1024, k=1024)
    ins = random_inputs(wl, seed=1)
    (out,) = reference(wl, *ins)
    assert_close(out, ins[0] @ ins[1])


@pytest.mark.parametrize("limit", [7, 64, 1000])
def test_chunked_evaluation_matches(monkeypatch, limit):
    """Chunking over spatial and reduction axes (max and sum combine across chunks)."""
    cases = [SUITE["SFM"][0](n=5, m=9), c1d(l=11, ci=3, co=4), SUITE["NRM"][0](n=6, m=7)]
    expected = [reference(wl, *random_inputs(wl), fast=False) for wl in cases]
    monkeypatch.setattr(R, "CHUNK_ELEMENTS", limit)
    for wl, exp_out in zip(cases, expected, strict=True):
        got = reference(wl, *random_inputs(wl), fast=False)
        np.testing.assert_allclose(got[0], exp_out[0], rtol=1e-6)


def test_convolution_factors_read_as_strided_views_match(monkeypatch):
    """A factor whose gathered grid is too large (a convolution's input at h + rh) is a
    strided view in the einsum fast paths of the reference and of the error bounds."""
    from probsched.ir.rounding import error_bounds
    from probsched.workloads import c2d, dep

    cases = [c2d(n=2, h=9, w=7, ci=3, co=5, kernel=3, stride=2, pad=1),
             dep(n=1, h=8, w=6, c=4, kernel=3, stride=1, pad=1), c1d(l=11, ci=3, co=4)]
    inputs = [random_inputs(wl) for wl in cases]
    expected = [reference(wl, *x, fast=False) for wl, x in zip(cases, inputs, strict=True)]
    gathered = [error_bounds(wl, *x) for wl, x in zip(cases, inputs, strict=True)]
    monkeypatch.setattr(R, "CHUNK_ELEMENTS", 10)
    viewed = []
    real_view = R.strided.view

    def counting_view(*args):
        viewed.append(args[1].tensor)
        return real_view(*args)

    monkeypatch.setattr(R.strided, "view", counting_view)
    for wl, x, exp_out, bound in zip(cases, inputs, expected, gathered, strict=True):
        np.testing.assert_allclose(reference(wl, *x)[-1], exp_out[-1], rtol=1e-6)
        np.testing.assert_allclose(error_bounds(wl, *x)[-1], bound[-1], rtol=1e-9)
    assert len(viewed) >= 2 * len(cases)


def test_chunks_cover_the_grid(monkeypatch):
    monkeypatch.setattr(R, "CHUNK_ELEMENTS", 10)
    extents = [3, 4, 5]
    seen = np.zeros(extents, dtype=int)
    for chunk in R.grid_chunks(extents):
        assert np.prod([len(r) for r in chunk]) <= 10
        seen[np.ix_(*[np.arange(r.start, r.stop) for r in chunk])] += 1
    assert (seen == 1).all()
    assert R.grid_chunks([]) == [()]


# ---------------------------------------------------------------- more operators


def test_batch_matmul_transposes():
    for ta in (False, True):
        for tb in (False, True):
            wl = batch_matmul(b=2, n=3, m=5, k=7, transpose_a=ta, transpose_b=tb)
            a, b = random_inputs(wl, seed=2)
            a2 = a.swapaxes(1, 2) if ta else a
            b2 = b.swapaxes(1, 2) if tb else b
            assert_close(reference(wl, a, b)[0], a2.astype(float) @ b2)


def test_grouped_dilated_3d_convolutions():
    wl = grouped_conv2d(h=9, w=7, ci=6, co=9, kernel=3, stride=2, pad=1, groups=3)
    x, w = random_inputs(wl)
    assert_close(reference(wl, x, w)[0], conv_nd(x, w, 2, 1, groups=3))
    wl = dilated_conv2d(h=11, w=10, ci=2, co=3, kernel=3, stride=2, pad=2, dilation=2)
    x, w = random_inputs(wl)
    assert_close(reference(wl, x, w)[0], conv_nd(x, w, 2, 2, dilation=2))
    wl = conv3d(d=5, h=6, w=7, ci=2, co=3, kernel=3, stride=2, pad=1)
    x, w = random_inputs(wl)
    assert_close(reference(wl, x, w)[0], conv_nd(x, w, 2, 1))


@pytest.mark.parametrize(
    ("kernel", "stride", "pad", "output_padding"),
    [(4, 2, 1, 0), (3, 2, 1, 1), (3, 1, 0, 0), (5, 3, 2, 2)],
)
def test_transposed_conv2d(kernel, stride, pad, output_padding):
    wl = transposed_conv2d(
        h=4, w=5, ci=3, co=2, kernel=kernel, stride=stride, pad=pad, output_padding=output_padding
    )
    x, w = random_inputs(wl, seed=4)
    assert_close(reference(wl, x, w)[0], deconv(x, w, stride, pad, output_padding))


@given(
    b=st.integers(1, 3),
    n=st.integers(1, 9),
    m=st.integers(1, 9),
    k=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_property_gmm(b, n, m, k, seed):
    wl = gmm(b=b, n=n, m=m, k=k)
    a, bb = random_inputs(wl, seed=seed)
    expected = a.astype(np.float64) @ bb
    for fast in (True, False):
        assert_close(reference(wl, a, bb, fast=fast)[0], expected)


@given(
    l=st.integers(1, 20),
    ci=st.integers(1, 4),
    co=st.integers(1, 4),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_property_c1d(l, ci, co, kernel, stride, pad, seed):  # noqa: E741
    if l + 2 * pad < kernel:
        with pytest.raises(WorkloadError):
            c1d(l=l, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
        return
    wl = c1d(l=l, ci=ci, co=co, kernel=kernel, stride=stride, pad=pad)
    x, w = random_inputs(wl, seed=seed)
    expected = conv_nd(x.astype(np.float64), w, stride, pad)
    for fast in (True, False):
        assert_close(reference(wl, x, w, fast=fast)[0], expected)


# ---------------------------------------------------------------- expression semantics


def test_select_arms_and_floor_semantics():
    """Untaken select arms may read out of bounds; // and % round toward minus infinity."""
    wb = WorkloadBuilder("sem")
    X = wb.input("X", (5,))
    I = wb.input("I", (7,), "int32")  # noqa: E741
    (i,) = axes("i")
    v = i - 3  # -3..3
    wb.compute(
        "Y",
        (i,),
        select(eq(v % 2, 1), 10.0, 0.0)
        + Cast("float32", v // 2)
        + Cast("float32", I[i] % 3)
        + log(exp(X[i % 5]))
        + select(i < 5, X[v + 3], -100.0) * minimum(X[i % 5], 0.5),
        shape=(7,),
    )
    wl = wb.build()
    x = np.linspace(-1, 1, 5).astype(np.float32)
    ints = np.arange(-3, 4, dtype=np.int32)
    expected = [
        (10.0 if (k - 3) % 2 == 1 else 0.0)
        + (k - 3) // 2
        + int(ints[k]) % 3
        + float(x[k % 5])
        + (float(x[k]) if k < 5 else -100.0) * min(float(x[k % 5]), 0.5)
        for k in range(7)
    ]
    for fast in (True, False):
        np.testing.assert_allclose(reference(wl, x, ints, fast=fast)[0], expected, rtol=1e-6)


def test_explicit_extent_overrides_mismatched_direct_uses():
    """``shape=`` decides the extent of an axis that indexes dimensions of different sizes."""
    wb = WorkloadBuilder("crop")
    X = wb.input("X", (5,))
    Z = wb.input("Z", (7,))
    (i,) = axes("i")
    wb.compute("Y", (i,), select(i < 5, X[i], 0.0) + Z[i], shape=(7,))
    x, z = np.arange(5.0), np.ones(7)
    np.testing.assert_array_equal(reference(wb.build(), x, z)[0], [1, 2, 3, 4, 5, 1, 1])


def test_dynamic_out_of_bounds_outside_select_raises():
    wb = WorkloadBuilder("gather")
    X = wb.input("X", (4,))
    I = wb.input("I", (3,), "int32")  # noqa: E741
    (i,) = axes("i")
    wb.compute("Y", (i,), X[I[i]])  # data-dependent index: not checkable statically
    wl = wb.build()
    x = np.arange(4, dtype=np.float32)
    assert reference(wl, x, np.array([3, 0, 2]))[0].tolist() == [3.0, 0.0, 2.0]
    with pytest.raises(WorkloadError, match=r"stage Y: X\[I\[i\]\] reads X out of bounds"):
        reference(wl, x, np.array([3, 4, 2]))


def test_min_reduction_and_integer_stage():
    wb = WorkloadBuilder("ints")
    A = wb.input("A", (4, 6), "int32")
    i, j = axes("i j")
    wb.compute("M", (i,), reduce_min(A[i, j] * 3 - 1))
    wl = wb.build()
    (a,) = random_inputs(wl, seed=9)
    assert a.dtype == np.int32 and np.abs(a).max() <= 4
    (out,) = reference(wl, a)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, (a * 3 - 1).min(axis=1))


# ---------------------------------------------------------------- inputs and checks


def test_input_validation():
    wl = gmm(b=1, n=2, m=3, k=4)
    a, b = random_inputs(wl)
    with pytest.raises(WorkloadError, match=r"takes 2 inputs \(A, B\), got 1"):
        reference(wl, a)
    with pytest.raises(WorkloadError, match=r"input B: shape \(1, 3, 4\), expected \(1, 4, 3\)"):
        reference(wl, a, b.swapaxes(1, 2))
    with pytest.raises(WorkloadError, match="input A: cannot convert to float32"):
        reference(wl, np.full(a.shape, "x"), b)
    # float64 inputs are cast to the declared float32 first
    out64 = reference(wl, a.astype(np.float64) + 1e-12, b)[0]
    np.testing.assert_array_equal(out64, reference(wl, a, b)[0])


def test_random_inputs_are_seeded_and_in_range():
    wl = SUITE["CBR"][0](**SUITE["CBR"][2])
    x1, x2 = random_inputs(wl, seed=7), random_inputs(wl, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(x1, x2, strict=True))
    assert not np.array_equal(x1[0], random_inputs(wl, seed=8)[0])
    assert [a.shape for a in x1] == [t.shape for t in wl.inputs]
    assert all(a.dtype == np.float32 and np.abs(a).max() <= 1 for a in x1)


def test_check_outputs():
    ref = np.array([1.0, -2.0, 4.0], dtype=np.float32)
    ok, err, msg = check_outputs([ref + 1e-4], [ref])
    assert ok and err == pytest.approx(1e-4, rel=1e-2) and msg.startswith("ok")
    ok, err, msg = check_outputs([ref + np.array([0, 0, 1e-3])], [ref])
    assert not ok and "max abs error" in msg and "at (2,)" in msg
    ok, _, msg = check_outputs([np.array([1.0, np.nan, 4.0])], [ref])
    assert not ok and "output not written (NaN) at (1,)" in msg
    ok, _, msg = check_outputs([np.array([1.0, np.inf, 4.0])], [ref])
    assert not ok
    ok, _, msg = check_outputs([ref[:2]], [ref])
    assert not ok and "shape (2,)" in msg
    ok, _, msg = check_outputs([ref, ref], [ref])
    assert not ok and "expected 1 outputs, got 2" in msg
    ok, _, msg = check_outputs([np.zeros(3)], [np.zeros(3)])
    assert ok
    assert not check_outputs([np.full(3, 1e-3)], [np.zeros(3)])[0]
    ok, _, msg = check_outputs([np.array([np.inf, 1.0])], [np.array([np.inf, 1.0])])
    assert ok
    ok, _, msg = check_outputs([np.array([-np.inf, 1.0])], [np.array([np.inf, 1.0])], names=["Y"])
    assert not ok and msg.startswith("Y:")


def test_a_matmul_takes_the_einsum_path_while_its_factors_are_no_larger_than_its_tensors(
        monkeypatch):
    """A factor as large as an input costs no more memory than the input: the fast path
    must not fall back to the chunked one for it (at 4096^3 that took tens of minutes)."""
    from probsched.ir import rounding
    from probsched.workloads import gmm

    monkeypatch.setattr(R, "CHUNK_ELEMENTS", 64)  # the bound of both (R.einsum_factors)
    wl = gmm(b=1, n=16, m=16, k=16)  # factors of 256 elements
    x = R.random_inputs(wl)
    env = dict(zip((t.name for t in wl.inputs), R.coerce_inputs(wl, x), strict=True))
    stage = wl.outputs[0]
    assert R._sum_of_products(stage, env) is not None
    bounded = {k: rounding._Bounded(v, abs(v), 0 * v) for k, v in env.items()}
    assert rounding._sum_of_products(stage, bounded) is not None
    np.testing.assert_allclose(R.reference(wl, *x)[0], x[0] @ x[1], rtol=1e-5, atol=1e-5)
