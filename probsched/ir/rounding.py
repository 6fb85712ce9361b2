"""How far a correct kernel may be from the reference: a bound on the rounding error of each
output element, from a running error analysis of the workload on the given inputs.

A kernel computes in its stages' dtypes (float32 mostly), in an order the schedule chose; the
reference computes exactly enough (float64) in its own order. So a correct kernel differs
from the reference by its rounding errors, which depend on each output's computation: a sum
of a million squares may be off by 1e-4 of its value, an elementwise op by an ulp. Every
value is carried as (value, magnitude, error bound), with ``u`` the unit roundoff of the
dtype computed in (2**-24 for float32), first order in ``u``:

- ``a ± b``: error ``e_a + e_b + u|v|``; ``a * b``: ``|a| e_b + |b| e_a + u|v|``;
  ``a / b``: ``(e_a + |v| e_b) / |b| + u|v|``; ``min``/``max``/``abs``/``select`` carry their
  operands' errors; ``exp``: ``|v| e_a + 2u|v|``; ``sqrt``: ``e_a / (2 sqrt a) + u|v|``,
  ``log``: ``e_a / a + 2u|log a|``;
- a sum of ``n`` terms: the terms' errors plus ``growth(n) * u * sum(|terms|)``, where
  ``growth(n) = sqrt(n) + 2 log2(n) + n / 64``. The worst case over every summation order is
  ``n``. Rounding errors of a long sum mostly behave as a random walk (``sqrt(n)``; the
  logarithm covers blocked and pairwise orders), but a long sequential sum of same-sign terms
  drifts: one float32 accumulator over 2**20 squares measured 0.7 % of the worst case, which
  ``n / 64`` with :data:`SAFETY` covers nine times (docs/benchmarks.md has the margins
  measured on sampled schedules);
- a max or min reduction is exact: the terms' errors.

An output element passes when ``|out - ref| <= SAFETY * bound + u_out * |ref|`` (the last
term: the output's own rounding). Inputs are exact.

>>> import numpy as np
>>> from probsched.workloads import nrm
>>> from probsched.ir.reference import random_inputs
>>> wl = nrm(n=1, m=4096)
>>> (bound,) = error_bounds(wl, *random_inputs(wl))
>>> (ref,) = __import__("probsched").reference(wl, *random_inputs(wl))
>>> bool(1e-7 < float(bound) / float(ref) < 1e-4)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import dtypes, strided
from . import expr as E
from .compute import Stage, Workload
from .numpy_ops import BINARY, CALLS, NP_DTYPES
from .reference import (
    axis_grid,
    check_memory,
    coerce_inputs,
    einsum_factors,
    evaluate,
    evaluate_stage,
    grid_chunks,
    load_index,
)

SAFETY = 4.0
"""Tolerance = SAFETY x the first-order bound (covers second-order terms and orders whose
error grows faster than the growth model's)."""

UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
TINY = 1.2e-38
"""Added to every float tolerance: float32's smallest normal (denormal results may differ)."""


def growth(n: int) -> float:
    """How a sum's rounding error grows with its length, in units of ``u * sum(|terms|)``."""
    return math.sqrt(n) + 2.0 * math.log2(n) + n / 64.0 if n > 1 else 1.0


@dataclass
class _Bounded:
    """Values on a grid with their magnitudes (``|terms|`` summed) and error bounds."""

    value: np.ndarray
    mag: np.ndarray
    err: np.ndarray


def error_bounds(workload: Workload, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per output, per element: a bound on the rounding error of a correct kernel (float64
    arrays of the outputs' shapes; zeros for integer outputs)."""
    check_memory(workload, 3, "the error bounds of its reference")
    values = dict(zip((t.name for t in workload.inputs), coerce_inputs(workload, inputs),
                      strict=True))
    env: dict[str, _Bounded] = {
        name: _Bounded(v, np.abs(v), np.zeros(v.shape, dtype=_storage(v.dtype)))
        for name, v in values.items()
    }
    for stage in workload.stages:
        b = _stage(stage, env)
        dtype = np.dtype(NP_DTYPES[stage.dtype])  # a float32 stage is stored as such
        keep = _storage(dtype)
        env[stage.name] = _Bounded(b.value.astype(dtype), b.mag.astype(keep), b.err.astype(keep))
    return tuple(env[s.name].err.astype(np.float64) for s in workload.outputs)


def _storage(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def tolerance(ref: np.ndarray, bound: np.ndarray, dtype: str) -> np.ndarray:
    """The largest difference from ``ref`` a correct kernel's output may have."""
    u = UNIT_ROUNDOFF.get(dtype, 0.0)
    return SAFETY * bound + u * np.abs(ref.astype(np.float64))


# ---------------------------------------------------------------- stages


def _stage(stage: Stage, env: Mapping[str, _Bounded]) -> _Bounded:
    if not dtypes.is_float_dtype(stage.dtype):  # integers: exact (unless they overflow)
        v = evaluate_stage(stage, {k: b.value for k, b in env.items()})
        return _Bounded(v, np.abs(v).astype(np.float64), np.zeros(v.shape))
    fast = _sum_of_products(stage, env)
    return fast if fast is not None else _general(stage, env)


def _general(stage: Stage, env: Mapping[str, _Bounded]) -> _Bounded:
    u = UNIT_ROUNDOFF[stage.dtype]
    names = list(stage.axes) + [a for a, _ in stage.reduce_axes]
    extents = list(stage.shape) + [n for _, n in stage.reduce_axes]
    nsp = len(stage.axes)
    n_terms = math.prod(n for _, n in stage.reduce_axes)
    out = _Bounded(np.zeros(stage.shape), np.zeros(stage.shape), np.zeros(stage.shape))
    first = True
    for chunk in grid_chunks(extents):
        grid = {n: axis_grid(r, i, len(names)) for i, (n, r) in enumerate(zip(names, chunk,
                                                                           strict=True))}
        with np.errstate(all="ignore"):
            b = _eval(stage.body, grid, env, stage, False, u)
        shape = tuple(len(r) for r in chunk)
        v, m, e = (np.broadcast_to(np.asarray(x, dtype=np.float64), shape)
                   for x in (b.value, b.mag, b.err))
        axes = tuple(range(nsp, len(names)))
        target = tuple(slice(r.start, r.stop) for r in chunk[:nsp])
        if stage.reduction == "sum":
            v, m, e = v.sum(axis=axes), m.sum(axis=axes), e.sum(axis=axes)
            more = any(r.start for r in chunk[nsp:])
            if more:
                out.value[target] += v
                out.mag[target] += m
                out.err[target] += e
            else:
                out.value[target], out.mag[target], out.err[target] = v, m, e
        elif stage.reduction in ("max", "min"):
            pick = np.max if stage.reduction == "max" else np.min
            v2, m2, e2 = pick(v, axis=axes), m.max(axis=axes), e.max(axis=axes)
            if not first and any(r.start for r in chunk[nsp:]):
                v2 = (np.maximum if stage.reduction == "max" else np.minimum)(
                    out.value[target], v2)
                m2, e2 = np.maximum(out.mag[target], m2), np.maximum(out.err[target], e2)
            out.value[target], out.mag[target], out.err[target] = v2, m2, e2
        else:
            out.value[target], out.mag[target], out.err[target] = v, m, e
        first = False
    if stage.reduction == "sum":
        out.err = out.err + growth(n_terms) * u * out.mag
    return out


def _sum_of_products(stage: Stage, env: Mapping[str, _Bounded]) -> _Bounded | None:
    """``sum(f1 * f2 * ...)`` by einsum: value, magnitude and the first-order error (each
    factor's error times the others' magnitudes), each factor on the grid of its own axes."""
    if stage.reduction != "sum":
        return None
    u = UNIT_ROUNDOFF[stage.dtype]
    plan = einsum_factors(stage, max((np.size(b.value) for b in env.values()), default=0),
                          {k: np.shape(b.value) for k, b in env.items()})
    if plan is None:
        return None
    letter, planned = plan
    extents = stage.extents
    factors: list[tuple[_Bounded, str]] = []
    for f, own, grid in planned:
        if grid is None:  # strided views of the tensor's value, magnitude and error
            assert isinstance(f, E.Load)
            src = env[f.tensor]
            b = _Bounded(*(strided.view(np.asarray(x, np.float64), f, extents, own)
                           for x in (src.value, src.mag, src.err)))
        else:
            with np.errstate(all="ignore"):
                b = _eval(f, grid, env, stage, False, u)
        shape = tuple(extents[a] for a in own)
        factors.append((_Bounded(*(np.broadcast_to(np.asarray(x, dtype=np.float64), shape)
                                   for x in (b.value, b.mag, b.err))), "".join(
                                       letter[a] for a in own)))
    kept = [a for a in stage.axes if any(letter[a] in s for _, s in factors)]
    spec_out = "".join(letter[a] for a in kept)

    def contract(arrays: Sequence[np.ndarray]) -> np.ndarray:
        spec = ",".join(s for _, s in factors) + "->" + spec_out
        out = np.einsum(spec, *arrays, optimize=True) if arrays else np.float64(1.0)
        out = np.asarray(out).reshape([extents[a] if a in kept else 1 for a in stage.axes])
        return np.array(np.broadcast_to(out, stage.shape), dtype=np.float64)

    value = contract([b.value for b, _ in factors])
    mag = contract([b.mag for b, _ in factors])
    err = np.zeros(stage.shape)
    for j, (b, _) in enumerate(factors):
        if np.any(b.err):
            err = err + contract([x.err if k == j else x.mag for k, (x, _) in
                                  enumerate(factors)])
    n_terms = math.prod(n for _, n in stage.reduce_axes)
    products = (len(factors) - 1) * u * mag  # rounding of each product
    return _Bounded(value, mag, err + products + growth(n_terms) * u * mag)


# ---------------------------------------------------------------- expressions


def _eval(e: E.Expr, grid, env: Mapping[str, _Bounded], stage: Stage, guarded: bool,
          u: float) -> _Bounded:
    values = _Values(env)
    if isinstance(e, E.Const | E.Var):
        v = np.asarray(evaluate(e, grid, values, stage, guarded), dtype=np.float64)
        exact = isinstance(e, E.Var) or float(np.float32(v)) == float(v)
        return _Bounded(v, np.abs(v), np.zeros_like(v) if exact else u * np.abs(v))
    if isinstance(e, E.Load):
        idx = load_index(e, grid, values, stage, guarded)
        src = env[e.tensor]
        v = src.value[idx]
        return _Bounded(v.astype(np.float64) if v.dtype.kind == "f" else v,
                        src.mag[idx].astype(np.float64), src.err[idx].astype(np.float64))
    if isinstance(e, E.Select):
        cond = np.asarray(evaluate(e.cond, grid, values, stage, guarded))
        a = _eval(e.a, grid, env, stage, True, u)
        b = _eval(e.b, grid, env, stage, True, u)
        return _Bounded(np.where(cond, a.value, b.value), np.where(cond, a.mag, b.mag),
                        np.where(cond, a.err, b.err))
    if isinstance(e, E.Binary):
        return _binary(e.op, _eval(e.a, grid, env, stage, guarded, u),
                       _eval(e.b, grid, env, stage, guarded, u), u)
    if isinstance(e, E.Call):
        (a,) = [_eval(x, grid, env, stage, guarded, u) for x in e.args]
        return _call(e.fn, a, u)
    if isinstance(e, E.Cast):
        a = _eval(e.value, grid, env, stage, guarded, u)
        if not dtypes.is_float_dtype(e.dtype):
            v = np.asarray(a.value).astype(np.float64)
            return _Bounded(np.trunc(v), np.abs(v), a.err)
        return _Bounded(a.value, a.mag, a.err + UNIT_ROUNDOFF[e.dtype] * np.abs(a.value))
    # comparisons and logical operators make conditions, not values with errors
    v = np.asarray(evaluate(e, grid, values, stage, guarded), dtype=np.float64)
    return _Bounded(v, np.abs(v), np.zeros_like(v))


def _binary(op: str, a: _Bounded, b: _Bounded, u: float) -> _Bounded:
    v = np.asarray(BINARY[op](a.value, b.value), dtype=np.float64)
    av, bv = np.abs(a.value), np.abs(b.value)
    if op in ("+", "-"):
        return _Bounded(v, a.mag + b.mag, a.err + b.err + u * np.abs(v))
    if op == "*":
        return _Bounded(v, a.mag * b.mag, av * b.err + bv * a.err + u * np.abs(v))
    if op == "/":
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(bv > b.err, (a.err + np.abs(v) * b.err) / (bv - b.err), np.inf)
            mag = np.where(bv > 0, a.mag / bv, np.inf)
        return _Bounded(v, mag, err + u * np.abs(v))
    if op in ("min", "max"):
        return _Bounded(v, np.maximum(a.mag, b.mag), np.maximum(a.err, b.err))
    return _Bounded(v, np.abs(v), np.maximum(a.err, b.err))  # // and % of floats: rare


def _call(fn: str, a: _Bounded, u: float) -> _Bounded:
    v = np.asarray(CALLS[fn](a.value), dtype=np.float64)
    av = np.abs(v)
    if fn == "exp":
        return _Bounded(v, av, av * np.expm1(np.minimum(a.err, 700.0)) + 2 * u * av)
    if fn == "sqrt":
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(v > 0, a.err / (2 * np.maximum(v, 1e-300)), np.sqrt(a.err))
        return _Bounded(v, np.sqrt(a.mag), err + u * av)
    if fn == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(np.abs(a.value) > a.err, a.err / (np.abs(a.value) - a.err), np.inf)
        return _Bounded(v, av, err + 2 * u * av)
    if fn == "tanh":  # derivative 1 - tanh^2 <= 1
        return _Bounded(v, np.minimum(a.mag, 1.0), a.err * (1 - v * v) + 4 * u * av)
    if fn == "erf":  # derivative 2 / sqrt(pi) exp(-x^2) <= 1.13
        slope = 1.1283791670955126 * np.exp(-np.minimum(a.value * a.value, 700.0))
        return _Bounded(v, np.minimum(1.2 * a.mag, 1.0), a.err * slope + 4 * u * av)
    return _Bounded(v, a.mag, a.err)  # abs


class _Values(Mapping):
    """The values of a bounded environment, for the reference's evaluator (indices)."""

    def __init__(self, env: Mapping[str, _Bounded]):
        self.env = env

    def __getitem__(self, key: str) -> np.ndarray:
        return self.env[key].value

    def __iter__(self):
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)
