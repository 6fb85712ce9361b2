"""The operator suite builds, has the expected structure and FLOP counts; malformed compute
definitions raise WorkloadError."""

import math
import time

import pytest

from probsched.errors import InferenceError, WorkloadError
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.expr import Cast, Const, Load
from probsched.ir.ops import reduce_sum, select
from probsched.ir.program import lower
from probsched.workloads import (
    SUITE,
    batch_matmul,
    c1d,
    c2d,
    cbr,
    conv3d,
    dep,
    dilated_conv2d,
    gmm,
    grouped_conv2d,
    nrm,
    sfm,
    transposed_conv2d,
)


def _conv_out(size, kernel, stride, pad, dilation=1):
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def expected_flops(name: str, p: dict) -> int:
    """The usual convention: 2 per multiply-add, plus the small epilogue terms."""
    if name == "GMM":
        return 2 * p["b"] * p["n"] * p["m"] * p["k"]
    if name == "C1D":
        ol = _conv_out(p["l"], p["kernel"], p["stride"], p["pad"])
        return 2 * p["n"] * ol * p["co"] * p["kernel"] * p["ci"]
    if name in ("C2D", "CBR"):
        oh = _conv_out(p["h"], p["kernel"], p["stride"], p["pad"])
        ow = _conv_out(p["w"], p["kernel"], p["stride"], p["pad"])
        out = p["n"] * oh * ow * p["co"]
        conv = 2 * out * p["kernel"] ** 2 * p["ci"]
        return conv if name == "C2D" else conv + 4 * out  # bias add, scale, offset, relu
    if name == "DEP":
        oh = _conv_out(p["h"], p["kernel"], p["stride"], p["pad"])
        ow = _conv_out(p["w"], p["kernel"], p["stride"], p["pad"])
        return 2 * p["n"] * oh * ow * p["c"] * p["kernel"] ** 2
    if name == "NRM":
        return 2 * p["n"] * p["m"] + 1  # squares and sum, one sqrt
    if name == "SFM":
        return 5 * p["n"] * p["m"]  # max, subtract, exp, sum, divide
    raise KeyError(name)


SIZES = [(name, which) for name in SUITE for which in ("design", "small")]


@pytest.mark.parametrize(("name", "which"), SIZES, ids=[f"{n}-{w}" for n, w in SIZES])
def test_suite_builds_with_expected_flops(name, which):
    fn, design, small = SUITE[name]
    params = design if which == "design" else small
    wl = fn(**params)
    assert wl.name == fn.__name__
    assert dict(wl.params) == params
    assert wl.flops == expected_flops(name, params)
    assert wl.output is wl.stages[-1]
    assert wl.structural_hash == fn(**params).structural_hash


def test_design_shapes_match_design_md():
    assert SUITE["GMM"][1] == dict(b=1, n=1024, m=1024, k=1024)
    assert gmm().flops == 2 * 1024**3
    assert c1d().output.shape == (1, 128, 128)
    assert c2d().output.shape == (1, 112, 112, 64)
    assert dep().output.shape == (1, 112, 112, 32)
    assert cbr().output.shape == (1, 112, 112, 64)
    assert nrm().output.shape == ()
    assert sfm().output.shape == (1024, 1024)


def test_small_shapes_are_small_and_odd():
    for name, (fn, _, small) in SUITE.items():
        wl = fn(**small)
        points = sum(math.prod(s.shape) * math.prod(n for _, n in s.reduce_axes) for s in wl.stages)
        assert points < 100_000, name
    odd = [n for name, (_, _, small) in SUITE.items() if name != "GMM" for n in small.values()]
    assert any(n > 2 and n % 2 for n in odd)


def test_stage_names_and_structure():
    assert [s.name for s in c1d().stages] == ["P", "C"]
    assert [s.name for s in c2d().stages] == ["P", "C"]
    assert [s.name for s in dep().stages] == ["P", "C"]
    assert [s.name for s in cbr().stages] == ["P", "C", "Y"]
    assert [s.name for s in nrm().stages] == ["S", "Y"]
    assert [s.name for s in sfm().stages] == ["M", "E", "S", "Y"]
    assert [t.name for t in cbr().inputs] == ["X", "W", "bias", "scale", "offset"]
    assert [s.reduction for s in sfm().stages] == ["max", None, "sum", None]
    conv = c2d().stage("C")
    assert conv.reduce_axes == (("rh", 7), ("rw", 7), ("rc", 3))
    assert c2d().stage("P").shape == (1, 230, 230, 3)
    assert c2d().tensor("W").shape == (7, 7, 3, 64)
    assert dep().tensor("W").shape == (3, 3, 32)
    assert c1d().tensor("W").shape == (3, 64, 128)


def test_padding_is_a_select_stage_and_skipped_without_padding():
    text = str(c1d(l=8, ci=2, co=4))
    assert "P[n, l, c]: float32[1, 10, 2] = select(l >= 1 and l < 9, X[n, l - 1, c], 0.0)" in text
    assert [s.name for s in c2d(pad=0).stages] == ["C"]
    with pytest.raises(WorkloadError, match="must not be negative"):
        c2d(pad=-1)


def test_c2d_dilation():
    wl = c2d(h=20, w=20, ci=2, co=3, kernel=3, stride=1, pad=2, dilation=2)
    assert wl.output.shape == (1, 20, 20, 3)
    assert "P[n, h + rh * 2, w + rw * 2, rc]" in str(wl)
    assert dilated_conv2d().output.shape == (1, 109, 109, 64)


def test_bad_parameters():
    with pytest.raises(WorkloadError, match="'kernel' must be a positive integer"):
        c2d(kernel=0)
    with pytest.raises(WorkloadError, match="does not fit"):
        c2d(h=3, w=3, kernel=7, pad=0)
    with pytest.raises(WorkloadError, match="groups=3 must divide"):
        grouped_conv2d(groups=3)
    with pytest.raises(WorkloadError, match="pad=4"):
        transposed_conv2d(kernel=4, pad=4)


def test_extra_operators_build():
    bmm = batch_matmul(b=3, n=5, m=7, k=9, transpose_a=True, transpose_b=True)
    assert bmm.tensor("A").shape == (3, 9, 5) and bmm.tensor("B").shape == (3, 7, 9)
    assert bmm.output.shape == (3, 5, 7) and bmm.flops == 2 * 3 * 5 * 7 * 9
    assert "A[b, k, i] * B[b, j, k]" in str(bmm)
    assert batch_matmul(b=2, n=3, m=4, k=5).tensor("B").shape == (2, 5, 4)

    grp = grouped_conv2d()
    assert grp.tensor("W").shape == (3, 3, 16, 128)
    assert grp.output.shape == (1, 28, 28, 128)
    assert grp.flops == 2 * 28 * 28 * 128 * 9 * 16
    assert "co // 32 * 16 + rc" in str(grp)

    t2d = transposed_conv2d()
    assert t2d.output.shape == (1, 8, 8, 256)
    assert t2d.flops == 2 * 8 * 8 * 256 * 16 * 512
    assert "(h - 2) % 2 == 0" in str(t2d)
    assert transposed_conv2d(h=3, w=5, kernel=3, stride=2, pad=1, output_padding=1).output.shape[
        1:3
    ] == (6, 10)

    c3d = conv3d()
    assert c3d.output.shape == (1, 8, 112, 112, 64)
    assert c3d.flops == 2 * 8 * 112 * 112 * 64 * 7**3 * 3


# ---------------------------------------------------------------- malformed definitions


def test_out_of_bounds_load_without_select():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (8,))
    (i,) = axes("i")
    # Each stage is checked as it is defined, so the error names it.
    with pytest.raises(WorkloadError, match=r"stage P: X\[i - 1\] reads X out of bounds.*guard "
                       "it with select"):
        wb.compute("P", (i,), X[i - 1], shape=(8,))


def test_out_of_bounds_load_inside_select_is_allowed():
    wb = WorkloadBuilder("ok")
    X = wb.input("X", (8,))
    (i,) = axes("i")
    wb.compute("P", (i,), select(i >= 1, X[i - 1], 0.0), shape=(8,))
    assert wb.build().output.shape == (8,)


def test_unknown_tensor():
    wb = WorkloadBuilder("bad")
    wb.input("X", (8,))
    (i,) = axes("i")
    with pytest.raises(WorkloadError, match="stage Y: Z is not an input or an earlier stage"):
        wb.compute("Y", (i,), Load("Z", (i,)), shape=(8,))


def test_uninferable_axis():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (8,))
    (i,) = axes("i")
    with pytest.raises(WorkloadError, match="cannot infer the extent of axis i; give shape="):
        wb.compute("Y", (i,), X[i * 2])


def test_uninferable_reduction_axis():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (8,))
    i, r = axes("i r")
    with pytest.raises(WorkloadError, match="reduction axis r; give extents="):
        wb.compute("Y", (i,), reduce_sum(X[i + r]), shape=(4,))


def test_an_uninferable_extent_names_the_stage_and_axes_for_the_front_ends():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (8,))
    i, r = axes("i r")
    with pytest.raises(InferenceError) as info:
        wb.compute("Y", (i,), reduce_sum(X[i + r]), shape=(4,))
    assert (info.value.stage, info.value.axes, info.value.reduction) == ("Y", ("r",), True)


def test_sizes_beyond_the_limits_are_refused():
    wb = WorkloadBuilder("big")
    with pytest.raises(WorkloadError, match=r"input A: 2199023255552 elements, more than 2\*\*40"):
        wb.input("A", (2**21, 2**20))
    with pytest.raises(WorkloadError, match="input B: 33 dimensions, more than 32"):
        wb.input("B", (1,) * 33)
    X = wb.input("X", (2**20,))
    i, j, r = axes("i j r")
    with pytest.raises(WorkloadError, match=r"stage Y: 2199023255552 elements, more than 2\*\*40"):
        wb.compute("Y", (i, j), X[i] * X[j], shape=(2**20, 2**21))
    with pytest.raises(WorkloadError, match="stage S: 2199023255552 iterations of a reduction"):
        wb.compute("S", (i,), reduce_sum(X[i] * X[i + r]), shape=(1,), extents={"r": 2**41})
    assert wb.compute("Z", (i, j), X[i] * X[j], shape=(2**20, 2**20)).shape == (2**20, 2**20)


def test_integer_constants_must_fit_64_bits():
    wb = WorkloadBuilder("w")
    A = wb.input("A", (4,), "int64")
    (i,) = axes("i")
    with pytest.raises(WorkloadError, match="stage B: the constant 9223372036854775808 does not"):
        wb.compute("B", (i,), A[i] * 2**63)
    assert wb.compute("C", (i,), A[i] * (2**63 - 1)).dtype == "int64"


def test_many_stages_are_checked_in_linear_time():
    """Each stage is validated once as it is added (it was every stage on every build)."""
    def build(n):
        wb = WorkloadBuilder("chain")
        prev = wb.input("A", (4,))
        (i,) = axes("i")
        for k in range(n):
            prev = wb.compute(f"S{k}", (i,), prev[i] + 1.0)
        return wb.build()

    start = time.perf_counter()
    wl = build(10_000)
    assert len(wl.stages) == 10_000 and wl.flops == 40_000 and wl.tensor("S9999").shape == (4,)
    assert time.perf_counter() - start < 10.0  # 0.7 s here; 117 s before, for the .sched form
    start = time.perf_counter()
    program = lower(wl)  # each stage's loop named i, i_1, ... i_9999 (the search was quadratic)
    assert [lp.var for lp in program.body][::3333] == ["i", "i_3333", "i_6666", "i_9999"]
    assert time.perf_counter() - start < 10.0  # 0.5 s here, 15 s before


def test_reduction_nested_in_an_expression():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (4, 8))
    i, k = axes("i k")
    with pytest.raises(WorkloadError, match="a reduction must be the whole right side"):
        wb.compute("Y", (i,), reduce_sum(X[i, k]) + 1.0)


def test_rank_mismatch_and_non_integer_index():
    wb = WorkloadBuilder("bad")
    X = wb.input("X", (4, 8))
    (i,) = axes("i")
    with pytest.raises(WorkloadError, match="X has 2 dimensions but is indexed with 1"):
        X[i]
    with pytest.raises(WorkloadError, match="stage Y: index float32.* is not an integer"):
        wb.compute("Y", (i,), X[i, Cast("float32", Const(0))], shape=(4,))
