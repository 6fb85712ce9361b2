"""Inline float32 exp (codegen/mathfns.py): IEEE edge cases, accuracy against float64 numpy,
and no libm call left in vectorized code."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.codegen import compile_program
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import exp
from probsched.target import host

N = 4096  # a multiple of every vector width used below
SMALLEST_NORMAL_RESULT = -87.33654  # below: exp is denormal, flushing to 0 is allowed
LARGEST_FINITE_RESULT = 88.72283


def exp_workload(n: int = N):
    wb = WorkloadBuilder("exp1d")
    X = wb.input("X", (n,))
    (i,) = axes("i")
    wb.compute("Y", (i,), exp(X[i]))
    return wb.build()


def exp_program(vectorized: bool, n: int = N):
    sch = ps.Schedule(exp_workload(n), seed=0)
    if vectorized:
        (i,) = sch.get_loops(sch.get_block("Y"))
        _, iv = sch.split(i, [None, 16])
        sch.vectorize(iv)
    return sch.program


@functools.cache
def exp_kernel(vectorized: bool, n: int = N):
    return compile_program(exp_program(vectorized, n), keep_text=True)


def run_exp(x: np.ndarray, vectorized: bool) -> np.ndarray:
    x = np.asarray(x, np.float32)
    padded = np.zeros(-(-len(x) // N) * N, np.float32)
    padded[: len(x)] = x
    out = [exp_kernel(vectorized)(chunk)[0] for chunk in padded.reshape(-1, N)]
    return np.concatenate(out)[: len(x)]


def relative_error(x: np.ndarray, got: np.ndarray) -> np.ndarray:
    want = np.exp(x.astype(np.float64))
    return np.abs(got.astype(np.float64) - want) / want


def assert_exp_matches(x: np.ndarray, got: np.ndarray) -> None:
    """NaN where NaN, the same infinities and zeros, 3e-7 relative error on normal results,
    FLT_MIN absolute error where the result is denormal."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    assert np.array_equal(np.isnan(got), np.isnan(x)), x[np.isnan(got) != np.isnan(x)]
    inf_differs = np.isposinf(got) != np.isposinf(want)
    assert not inf_differs.any(), x[inf_differs]
    assert not np.isneginf(got).any() and not (got < 0).any()
    normal = (x >= SMALLEST_NORMAL_RESULT) & (x <= LARGEST_FINITE_RESULT)
    err = relative_error(x[normal], got[normal])
    assert err.max(initial=0.0) <= 3e-7, (x[normal][err.argmax()], err.max())
    low = x < SMALLEST_NORMAL_RESULT
    assert np.all(np.abs(got[low] - want[low]) <= np.finfo(np.float32).tiny)
    assert np.all(got[want == 0] == 0)


EDGES = np.array(
    [-np.inf, np.inf, np.nan, -np.nan, 0.0, -0.0, 88.8, -88.8, 88.72283, 88.722839, 88.7229,
     -87.33654, -87.3366, -90.0, -103.9, -104.0, -1e4, 1e4, 1e-45, -1e-45, 1e-38, -1e-38,
     1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, np.log(2), -np.log(2), 0.34657359, -0.34657359,
     np.finfo(np.float32).max, -np.finfo(np.float32).max],
    np.float32,
)


@pytest.mark.parametrize("vectorized", [False, True])
def test_exp_edge_cases(vectorized):
    got = run_exp(EDGES, vectorized)
    assert_exp_matches(EDGES, got)
    with np.errstate(over="ignore"):
        want = np.exp(EDGES)
    exact = np.isinf(want) | (want == 0) | (EDGES == 0)  # infinities, zeros and exp(+-0) = 1
    assert np.array_equal(got[exact], want[exact])
    assert np.isnan(got[2]) and np.isnan(got[3])
    assert got[EDGES == -104.0][0] == 0 and got[EDGES == -np.inf][0] == 0


@pytest.mark.parametrize("vectorized", [False, True])
def test_exp_dense_sweep_within_3e_7(vectorized):
    x = np.linspace(-87.0, 88.0, 200_003, dtype=np.float32)
    # and every float32 near the ends of the range, where 2^n is scaled to its limits
    ends = [np.arange(lo, lo + 2000, dtype=np.int32).view(np.float32)
            for lo in (np.float32(-87.33654).view(np.int32) - 1000,
                       np.float32(88.72283).view(np.int32) - 1000)]
    x = np.concatenate([x, *ends])
    got = run_exp(x, vectorized)
    assert_exp_matches(x, got)
    normal = (x >= SMALLEST_NORMAL_RESULT) & (x <= LARGEST_FINITE_RESULT)
    ulp = np.spacing(np.exp(x[normal]))
    assert (np.abs(got[normal].astype(np.float64) - np.exp(x[normal].astype(np.float64)))
            / ulp).max() <= 2.0


def test_scalar_and_vector_exp_agree():
    x = np.random.default_rng(0).uniform(-90, 90, N).astype(np.float32)
    assert np.array_equal(run_exp(x, False), run_exp(x, True))


@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True),
                min_size=1, max_size=64))
def test_exp_property_random_floats(xs):
    x = np.array(xs, np.float32)
    for vectorized in (False, True):
        assert_exp_matches(x, run_exp(x, vectorized))


@given(st.lists(st.floats(-87.25, 88.5, width=32), min_size=1, max_size=64))
def test_exp_property_normal_range(xs):
    x = np.array(xs, np.float32)
    got = run_exp(x, True)
    assert relative_error(x, got).max() <= 3e-7


def test_vectorized_exp_calls_no_libm():
    kernel = exp_kernel(True)
    assert f"<{host().vector_lanes()} x float>" in kernel.ir
    assert "expf" not in kernel.ir and "llvm.exp." not in kernel.ir
    assert "expf" not in kernel.asm


def test_scalar_exp_calls_no_libm():
    kernel = exp_kernel(False)
    assert "expf" not in kernel.ir and "llvm.exp." not in kernel.ir


def test_float64_exp_keeps_the_intrinsic():
    wb = WorkloadBuilder("exp64")
    X = wb.input("X", (16,), "float64")
    (i,) = axes("i")
    wb.compute("Y", (i,), exp(X[i]))
    wl = wb.build()
    kernel = compile_program(ps.Schedule(wl).program)
    x = np.linspace(-700, 700, 16)
    np.testing.assert_allclose(kernel(x)[0], np.exp(x), rtol=1e-15)
