"""Inline float32 tanh and erf (codegen/mathfns.py): accuracy against float64 numpy over
the whole range, edge cases, scalar and vector code agreeing, the reference and the rounding
bounds knowing them."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import probsched as ps
from probsched.codegen import compile_program
from probsched.ir.compute import WorkloadBuilder, axes
from probsched.ir.ops import erf, tanh
from probsched.ir.rounding import error_bounds

N = 4096
FNS = {"tanh": (tanh, np.tanh), "erf": (erf, np.vectorize(math.erf, otypes=[np.float64]))}


def workload(fn: str, n: int = N, dtype: str = "float32"):
    wb = WorkloadBuilder(f"{fn}1d")
    X = wb.input("X", (n,), dtype)
    (i,) = axes("i")
    wb.compute("Y", (i,), FNS[fn][0](X[i]))
    return wb.build()


@functools.cache
def kernel(fn: str, vectorized: bool):
    sch = ps.Schedule(workload(fn), seed=0)
    if vectorized:
        (i,) = sch.get_loops(sch.get_block("Y"))
        _, iv = sch.split(i, [None, 16])
        sch.vectorize(iv)
    return compile_program(sch.program, keep_text=True)


def run(fn: str, x: np.ndarray, vectorized: bool) -> np.ndarray:
    x = np.asarray(x, np.float32)
    padded = np.zeros(-(-len(x) // N) * N, np.float32)
    padded[: len(x)] = x
    out = [kernel(fn, vectorized)(chunk)[0] for chunk in padded.reshape(-1, N)]
    return np.concatenate(out)[: len(x)]


def ulps(fn: str, x: np.ndarray, got: np.ndarray) -> np.ndarray:
    want = FNS[fn][1](x.astype(np.float64))
    spacing = np.spacing(np.maximum(np.abs(want), np.finfo(np.float32).tiny).astype(np.float32))
    return np.abs(got.astype(np.float64) - want) / spacing.astype(np.float64)


@pytest.mark.parametrize("vectorized", [False, True])
@pytest.mark.parametrize("fn", ["tanh", "erf"])
def test_dense_sweep_within_4_ulp(fn, vectorized):
    x = np.concatenate([np.linspace(-10, 10, 200_001, dtype=np.float32),
                        np.geomspace(1e-30, 1, 2001, dtype=np.float32)])
    assert ulps(fn, x, run(fn, x, vectorized)).max() <= 4.0


@pytest.mark.parametrize("fn", ["tanh", "erf"])
def test_edge_cases(fn):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, 0.625, 1.0, 4.0, 1e30, -1e30],
                 np.float32)
    for vectorized in (False, True):
        got = run(fn, x, vectorized)
        assert np.isnan(got[2])
        np.testing.assert_array_equal(got[[0, 1, 9, 10]], [1, -1, 1, -1])
        assert got[3] == 0 and np.signbit(got[4])
        assert ulps(fn, x[5:9], got[5:9]).max() <= 4.0


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=True), min_size=1,
                max_size=64), st.sampled_from(["tanh", "erf"]))
def test_property_scalar_and_vector_agree_within_4_ulp(xs, fn):
    x = np.array(xs, np.float32)
    scalar, vector = run(fn, x, False), run(fn, x, True)
    np.testing.assert_array_equal(scalar, vector)
    finite = np.isfinite(x)
    assert ulps(fn, x[finite], scalar[finite]).max(initial=0) <= 4.0


@pytest.mark.parametrize("fn", ["tanh", "erf"])
def test_no_libm_call_in_float32_code(fn):
    k = kernel(fn, True)
    assert f"@{fn}(" not in k.ir and f"{fn}f" not in k.asm


@pytest.mark.parametrize("fn", ["tanh", "erf"])
def test_float64_calls_libm(fn):
    wl = workload(fn, 16, "float64")
    x = np.linspace(-5, 5, 16)
    got = compile_program(ps.Schedule(wl).program)(x)[0]
    np.testing.assert_allclose(got, FNS[fn][1](x), rtol=1e-15)


@pytest.mark.parametrize("fn", ["tanh", "erf"])
def test_reference_and_rounding_bounds(fn):
    wl = workload(fn, 64)
    x = np.linspace(-3, 3, 64, dtype=np.float32)
    (ref,) = ps.reference(wl, x)
    np.testing.assert_allclose(ref, FNS[fn][1](x.astype(np.float64)), rtol=1e-6)
    (bound,) = error_bounds(wl, x)
    got = run(fn, x, True)
    assert np.all(np.abs(got.astype(np.float64) - FNS[fn][1](x.astype(np.float64))) <= bound)
