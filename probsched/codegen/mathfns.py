"""Elementary functions written out as straight-line IR: float32 ``exp``, ``tanh``, ``erf``.

Why: LLVM here has no vector math library, so ``llvm.exp.v8f32`` becomes eight scalar ``expf``
calls, and kernels that take many exponentials (softmax) run slower than numpy. An inline
range reduction and polynomial vectorizes like any other arithmetic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .irtext import Value, const, intrinsic_suffix, vec_type

if TYPE_CHECKING:
    from .exprs import ExprEmitter

# float32 exp, after Cephes expf (Stephen L. Moshier, cephes/single/expf.c): the constants
# are its published ones; the code is written anew.
#
# ln 2 split in two (Cody-Waite): _LN2_HI has only 9 significant bits, so n * _LN2_HI is exact
# for every n reached here and x - n * ln2 keeps its low bits.
_LOG2E = 1.44269504088896341
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
# exp(r) ~= 1 + r + r^2 * P(r) on |r| <= ln2 / 2; P's coefficients, highest degree first.
_EXP_P = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
          1.6666665459e-1, 5.0000001201e-1)
# The largest float32 whose exp is finite (ln FLT_MAX = 88.7228391 rounds up to one whose
# exp overflows): above it the result is +inf.
_EXP_HI = 88.72283172607422
# The smallest float32 whose exp is a normal float (ln FLT_MIN = -87.3365448): below it the
# result is flushed to 0. exp there is at most FLT_MIN (1.2e-38), so that is the absolute error.
_EXP_LO = -87.33654022216797


def exp_f32(ex: ExprEmitter, x: Value) -> Value:
    """``exp(x)`` for a float32 scalar or vector ``x``, within 2 ulp for normal results;
    +inf above ~88.72, 0 below ~-87.34 (no denormals), NaN for NaN. Branch-free."""
    fn, lanes = ex.fn, x.lanes
    f32, i32 = vec_type("float32", lanes), vec_type("int32", lanes)
    sfx = intrinsic_suffix("float32", lanes)

    def k(value: float, dtype: str = "float32") -> Value:
        return _splat_const(value, dtype, lanes)

    def fmuladd(a: Value, b: Value, c: Value) -> Value:
        # fmuladd, not fma: fused where the CPU has FMA, never a call to libm's fmaf.
        return ex.intrinsic(f"llvm.fmuladd.{sfx}", x, [a, b, c])

    # Clamp first: the arithmetic below then never sees NaN or inf (fptosi of either is
    # poison) and 2^n stays a normal float; the selects at the end restore those cases.
    # maxnum/minnum return the other operand for NaN.
    xc = ex.intrinsic(f"llvm.maxnum.{sfx}", x, [x, k(_EXP_LO)])
    xc = ex.intrinsic(f"llvm.minnum.{sfx}", x, [xc, k(_EXP_HI)])

    # x = n ln2 + r with n an integer and |r| <= ln2 / 2. No fast-math flags on these ops:
    # reassociation would merge the two halves of ln 2 and lose r's low bits.
    t = fn.op(f"fmul {xc.typed}, {k(_LOG2E).ref}", "float32", lanes)
    n = ex.intrinsic(f"llvm.roundeven.{sfx}", x, [t])
    r = fmuladd(n, k(-_LN2_HI), xc)
    r = fmuladd(n, k(-_LN2_LO), r)

    # exp(r) = 1 + r + r^2 P(r), Horner's rule.
    p = k(_EXP_P[0])
    for c in _EXP_P[1:]:
        p = fmuladd(p, r, k(c))
    r2 = fn.op(f"fmul {r.typed}, {r.ref}", "float32", lanes)
    p = fmuladd(p, r2, r)
    p = fn.op(f"fadd {p.typed}, {k(1.0).ref}", "float32", lanes)

    # Times 2^n: add n to the exponent field. n is in [-126, 128] and exp(r) in
    # [0.70, 1.42], so the biased exponent stays in [1, 254] wherever the clamp let x through
    # unchanged (n = 128 only with exp(r) < 1, n = -126 only with exp(r) >= 1).
    ni = fn.op(f"fptosi {n.typed} to {i32}", "int32", lanes)
    shift = fn.op(f"shl {ni.typed}, {k(23, 'int32').ref}", "int32", lanes)
    bits = fn.op(f"bitcast {p.typed} to {i32}", "int32", lanes)
    bits = fn.op(f"add {bits.typed}, {shift.ref}", "int32", lanes)
    y = fn.op(f"bitcast {bits.typed} to {f32}", "float32", lanes)

    # Edge cases as selects, so vector code stays branch-free: overflow (and +inf) to +inf,
    # underflow (and -inf) to 0, NaN to itself. Ordered compares are false for NaN.
    over = fn.op(f"fcmp ogt {x.typed}, {k(_EXP_HI).ref}", "bool", lanes)
    y = _select(ex, over, k(math.inf), y)
    under = fn.op(f"fcmp olt {x.typed}, {k(_EXP_LO).ref}", "bool", lanes)
    y = _select(ex, under, k(0.0), y)
    nan = fn.op(f"fcmp uno {x.typed}, {x.ref}", "bool", lanes)
    return _select(ex, nan, x, y)


def _select(ex: ExprEmitter, cond: Value, a: Value, b: Value) -> Value:
    return ex.fn.op(f"select {cond.typed}, {a.typed}, {b.typed}", b.dtype, b.lanes)


def _splat_const(value: float, dtype: str, lanes: int) -> Value:
    """A constant, as a scalar or as a vector with every lane ``value`` (no shuffles)."""
    c = const(value, dtype)
    if not lanes:
        return c
    return Value(f"splat ({c.typed})", dtype, lanes)


# tanh and erf: odd functions, computed on |x| and given x's sign. The polynomials were fitted
# for this file (weighted least squares on Chebyshev nodes, in float64); tests/test_mathfns.py
# holds them to 4 ulp of float64 numpy over the whole range.
#
# tanh(x) = x + x^3 P(x^2) for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1) (no cancellation
# worth the name there: the result is above 0.55).
_TANH_SMALL = 0.625
_TANH_P = (-0.006155206771121853, 0.021045694734731057, -0.053863919570070834,
           0.13332890671732905, -0.333333314065604)
# erf(x) = x Q(x^2) for |x| < 1, else 1 - exp(-x^2) R(1 / |x|) (R fitted on 1 <= |x| <= 4;
# erf rounds to 1 beyond 3.92, so |x| is clamped to 4 there).
_ERF_Q = (7.89820215154366e-05, -0.0008024351375381933, 0.005190053211952664,
          -0.026854808300264196, 0.11283612420613631, -0.3761262884223165, 1.1283791665095695)
_ERF_R = (-0.012079884617625438, 0.04147293368297747, -0.0032566806108688326,
          -0.21059322769048477, 0.4749651454479222, -0.4620603850862177, 0.03947317201956667,
          0.5594154848028425, 0.0002469873514981402)


def tanh_f32(ex: ExprEmitter, x: Value) -> Value:
    """``tanh(x)`` for a float32 scalar or vector: within 4 ulp; +-1 for +-inf, NaN for NaN."""
    m = _Math(ex, x)
    a = m.call("fabs", x)
    z = m.op("fmul", x, x)
    small = m.fmuladd(m.op("fmul", x, z), m.horner(_TANH_P, z), x)
    s = exp_f32(ex, m.op("fadd", a, a))
    big = m.op("fsub", m.k(1.0), m.op("fdiv", m.k(2.0), m.op("fadd", s, m.k(1.0))))
    is_small = ex.fn.op(f"fcmp olt {a.typed}, {m.k(_TANH_SMALL).ref}", "bool", x.lanes)
    # NaN takes big, which is NaN; the sign is x's (-0 included)
    return m.call("copysign", _select(ex, is_small, small, big), x)


def erf_f32(ex: ExprEmitter, x: Value) -> Value:
    """``erf(x)`` for a float32 scalar or vector: within 4 ulp; +-1 for +-inf, NaN for NaN."""
    m = _Math(ex, x)
    a = m.call("fabs", x)
    z = m.op("fmul", x, x)
    small = m.op("fmul", x, m.horner(_ERF_Q, z))
    ac = m.call("minnum", a, m.k(4.0))
    e = exp_f32(ex, m.op("fsub", m.k(0.0), m.op("fmul", ac, ac)))
    tail = m.op("fmul", e, m.horner(_ERF_R, m.op("fdiv", m.k(1.0), ac)))
    big = m.call("copysign", m.op("fsub", m.k(1.0), tail), x)
    is_small = ex.fn.op(f"fcmp olt {a.typed}, {m.k(1.0).ref}", "bool", x.lanes)
    y = _select(ex, is_small, small, big)
    nan = ex.fn.op(f"fcmp uno {x.typed}, {x.ref}", "bool", x.lanes)
    return _select(ex, nan, x, y)


class _Math:
    """Float32 arithmetic on values shaped like ``x`` (scalar or vector), no fast-math."""

    def __init__(self, ex: ExprEmitter, x: Value):
        self.ex, self.lanes = ex, x.lanes
        self.sfx = intrinsic_suffix("float32", x.lanes)

    def k(self, value: float) -> Value:
        return _splat_const(value, "float32", self.lanes)

    def op(self, ins: str, a: Value, b: Value) -> Value:
        return self.ex.fn.op(f"{ins} {a.typed}, {b.ref}", "float32", self.lanes)

    def call(self, name: str, *args: Value) -> Value:
        return self.ex.intrinsic(f"llvm.{name}.{self.sfx}", args[0], list(args))

    def fmuladd(self, a: Value, b: Value, c: Value) -> Value:
        return self.call("fmuladd", a, b, c)

    def horner(self, coeffs: tuple[float, ...], z: Value) -> Value:
        p = self.k(coeffs[0])
        for c in coeffs[1:]:
            p = self.fmuladd(p, z, self.k(c))
        return p
