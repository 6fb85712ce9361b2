"""numpy evaluation of a Workload straight from its definition: the correctness oracle.

Independent of :mod:`program` and codegen. Each stage is evaluated in order, vectorised over a
grid of index arrays (spatial axes, then reduction axes), chunked over the leading axes so that
no temporary exceeds :data:`CHUNK_ELEMENTS` elements. Floats are computed in float64 and
stored in their stage's dtype (a float32 intermediate takes half the memory, and the kernel
rounds it the same way). A reference that would not fit in the memory available is refused
before anything is allocated (:class:`~probsched.errors.ResourceError`, with the size).

>>> import numpy as np
>>> from probsched.workloads import gmm
>>> wl = gmm(b=1, n=2, m=3, k=4)
>>> A, B = random_inputs(wl, seed=0)
>>> (C,) = reference(wl, A, B)
>>> C.dtype, bool(np.allclose(C, A @ B, rtol=1e-6))
(dtype('float32'), True)

A sum of products (``A[i, k] * B[k, j]``) takes a fast path: each factor on its own axes'
grid, contracted by ``np.einsum`` (``fast=False``: the general path).
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..errors import ResourceError, WorkloadError
from . import dtypes, strided
from . import expr as E
from .compute import Stage, Tensor, Workload
from .numpy_ops import BINARY, CALLS, COMPARE, NP_DTYPES

CHUNK_ELEMENTS = 1 << 22
"""Largest evaluation grid (elements) materialised at once."""



def reference(workload: Workload, *inputs: np.ndarray, fast: bool = True) -> tuple[np.ndarray, ...]:
    """The workload's outputs on ``inputs`` (numpy arrays in input order), one per output."""
    check_memory(workload, 1, "its reference")
    env = dict(zip((t.name for t in workload.inputs), coerce_inputs(workload, inputs), strict=True))
    for stage in workload.stages:
        env[stage.name] = evaluate_stage(stage, env, fast=fast).astype(NP_DTYPES[stage.dtype])
    return tuple(env[s.name] for s in workload.outputs)


def stored_bytes(workload: Workload) -> int:
    """Bytes of every input and stage in its dtype: what a reference keeps at once."""
    tensors: list[Tensor | Stage] = [*workload.inputs, *workload.stages]
    return sum(math.prod(t.shape) * np.dtype(NP_DTYPES[t.dtype]).itemsize for t in tensors)


def available_bytes() -> int | None:
    """Memory this machine can give now (Linux's MemAvailable; None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(workload: Workload, copies: int, what: str) -> None:
    """Refuse (a ResourceError naming the sizes) to compute ``what`` of ``workload`` when
    ``copies`` of its tensors and the evaluation's temporaries would not fit in memory."""
    need = copies * stored_bytes(workload) + 16 * CHUNK_ELEMENTS * 8
    have = available_bytes()
    if have is not None and need > 0.8 * have:
        tensors: list[Tensor | Stage] = [*workload.inputs, *workload.stages]
        big = max(tensors, key=lambda t: math.prod(t.shape))
        raise ResourceError(
            f"workload {workload.name}: {what} needs {need / 2**30:.1f} GiB "
            f"({big.name} alone is {'x'.join(map(str, big.shape))} {big.dtype}); this machine "
            f"has {have / 2**30:.1f} GiB available")


def random_inputs(workload: Workload, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random inputs: uniform in [-1, 1] for floats, integers in [-4, 4], random booleans."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for t in workload.inputs:
        a: np.ndarray
        if t.dtype == "float32":  # drawn in float32: a huge input needs no float64 copy
            a = rng.random(t.shape, dtype=np.float32)
            a *= 2
            a -= 1
        elif dtypes.is_float_dtype(t.dtype):
            a = rng.uniform(-1.0, 1.0, size=t.shape)
        elif t.dtype == "bool":
            a = rng.integers(0, 2, size=t.shape) == 1
        else:
            a = rng.integers(-4, 5, size=t.shape)
        out.append(np.asarray(a, dtype=NP_DTYPES[t.dtype]))
    return tuple(out)


def check_outputs(
    outputs: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    rtol: float = 1e-4,
    *,
    atol: float = 1e-6,
    names: Sequence[str] | None = None,
    tolerances: Sequence[np.ndarray] | None = None,
) -> tuple[bool, float, str]:
    """Compare kernel outputs with reference outputs: ``(ok, max_abs_err, message)``.

    An output passes when its shape matches, it is finite wherever the reference is (NaN
    there means "output not written"), it equals the reference's infinities, and its error
    is at most its tolerance everywhere: per element, ``tolerances`` (the rounding-error
    bounds of :mod:`.rounding`, as the runner gives them), else ``rtol * max(|ref|) + atol``.
    """
    names = list(names) if names is not None else [f"output {i}" for i in range(len(refs))]
    if len(outputs) != len(refs):
        return False, math.inf, f"expected {len(refs)} outputs, got {len(outputs)}"
    worst = 0.0
    for k, (name, out, ref) in enumerate(zip(names, outputs, refs, strict=True)):
        out, ref = np.asarray(out), np.asarray(ref)
        if out.shape != ref.shape:
            return False, math.inf, f"{name}: shape {out.shape}, expected {ref.shape}"
        out, ref = out.astype(np.float64), ref.astype(np.float64)
        finite = np.isfinite(ref)
        unwritten = finite & np.isnan(out)
        if unwritten.any():
            at = _first(unwritten)
            return False, math.inf, f"{name}: output not written (NaN) at {at}"
        bad = finite & ~np.isfinite(out)
        if bad.any():
            at = _first(bad)
            return False, math.inf, f"{name}: {out[at]} at {at}, expected {ref[at]}"
        infs = np.isinf(ref) & (out != ref)
        if infs.any():
            at = _first(infs)
            return False, math.inf, f"{name}: {out[at]} at {at}, expected {ref[at]}"
        if not finite.any():
            continue
        with np.errstate(invalid="ignore"):
            err = np.where(finite, np.abs(out - ref), 0.0)
        max_err = float(err.max())
        worst = max(worst, max_err)
        if tolerances is not None:
            tol = np.broadcast_to(np.asarray(tolerances[k], dtype=np.float64), err.shape)
        else:
            tol = np.full(err.shape, rtol * float(np.abs(ref[finite]).max()) + atol)
        if (err > tol).any():
            at = _first(err - tol == (err - tol).max())
            return (
                False,
                worst,
                (
                    f"{name}: error {err[at]:.3g} > tolerance {tol[at]:.3g} at {at} "
                    f"({out[at]!r}, expected {ref[at]!r}; max abs error {max_err:.3g})"
                ),
            )
    return True, worst, f"ok: max abs error {worst:.3g}"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def coerce_inputs(workload: Workload, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate count and shapes; cast to the declared dtype (loads compute floats in
    float64)."""
    names = ", ".join(t.name for t in workload.inputs)
    if len(inputs) != len(workload.inputs):
        raise WorkloadError(
            f"workload {workload.name} takes {len(workload.inputs)} inputs ({names}), "
            f"got {len(inputs)}"
        )
    out = []
    for t, x in zip(workload.inputs, inputs, strict=True):
        try:
            a = np.asarray(x)
            a = a.astype(NP_DTYPES[t.dtype], casting="unsafe")
        except (TypeError, ValueError) as exc:
            raise WorkloadError(f"input {t.name}: cannot convert to {t.dtype}: {exc}") from None
        if a.shape != t.shape:
            raise WorkloadError(f"input {t.name}: shape {a.shape}, expected {t.shape}")
        out.append(a)
    return out


# ---------------------------------------------------------------- stages


def evaluate_stage(stage: Stage, env: Mapping[str, np.ndarray], *, fast: bool = True) -> np.ndarray:
    """One stage's values from the arrays of the inputs and earlier stages (in ``env``);
    float64 for float stages."""
    if fast:
        out = _sum_of_products(stage, env)
        if out is not None:
            return out
    return _general(stage, env)


def _general(stage: Stage, env: Mapping[str, np.ndarray]) -> np.ndarray:
    names = list(stage.axes) + [a for a, _ in stage.reduce_axes]
    extents = list(stage.shape) + [n for _, n in stage.reduce_axes]
    nsp = len(stage.axes)
    kind = stage.reduction
    out_dtype = np.float64 if dtypes.is_float_dtype(stage.dtype) else NP_DTYPES[stage.dtype]
    out: np.ndarray = np.empty(stage.shape, dtype=out_dtype)
    for chunk in grid_chunks(extents):
        grid = {n: axis_grid(r, i, len(names))
                for i, (n, r) in enumerate(zip(names, chunk, strict=True))}
        with np.errstate(all="ignore"):
            vals = evaluate(stage.body, grid, env, stage, guarded=False)
        vals = np.broadcast_to(np.asarray(vals), tuple(len(r) for r in chunk))
        if kind is not None:
            vals = _REDUCE[kind](vals, axis=tuple(range(nsp, len(names))))
        vals = np.asarray(vals).astype(out_dtype)
        target = tuple(slice(r.start, r.stop) for r in chunk[:nsp])
        if kind is not None and any(r.start for r in chunk[nsp:]):  # a later reduction block
            out[target] = _COMBINE[kind](out[target], vals)
        else:
            out[target] = vals
    return out


_REDUCE: dict[str, Callable[..., np.ndarray]] = {"sum": np.sum, "max": np.max, "min": np.min}
_COMBINE = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def grid_chunks(extents: Sequence[int]) -> list[tuple[range, ...]]:
    """Cover the grid by boxes of at most CHUNK_ELEMENTS: single indices on the leading axes,
    a block of axis ``k``, the trailing axes whole."""
    k = 0
    while k < len(extents) and math.prod(extents[k + 1 :]) > CHUNK_ELEMENTS:
        k += 1
    if k == len(extents):  # a 0-dimensional stage without reduction
        return [()]
    block = max(1, CHUNK_ELEMENTS // math.prod(extents[k + 1 :]))
    lead = [[range(i, i + 1) for i in range(n)] for n in extents[:k]]
    mid = [range(s, min(s + block, extents[k])) for s in range(0, extents[k], block)]
    rest = tuple(range(n) for n in extents[k + 1 :])
    return [(*head, m, *rest) for head in itertools.product(*lead) for m in mid]


def axis_grid(r: range, position: int, ndim: int) -> np.ndarray:
    """Index values ``r`` as an array broadcasting along dimension ``position`` of ``ndim``."""
    shape = [1] * ndim
    shape[position] = len(r)
    return np.arange(r.start, r.stop, dtype=np.int64).reshape(shape)


# ---------------------------------------------------------------- expressions


def evaluate(e: E.Expr, grid: Mapping[str, np.ndarray], env, stage: Stage, guarded: bool):
    """``e``'s values on ``grid`` (index arrays by axis), loads from ``env``; ``guarded``:
    inside an arm of a select, where an index out of bounds is clamped (never taken)."""
    if isinstance(e, E.Const):
        if e.dtype is not None:
            return NP_DTYPES[e.dtype](e.value)
        return e.value
    if isinstance(e, E.Var):
        return grid[e.name]
    if isinstance(e, E.Load):
        return _load(e, grid, env, stage, guarded)
    if isinstance(e, E.Select):
        cond = evaluate(e.cond, grid, env, stage, guarded)
        a = evaluate(e.a, grid, env, stage, True)
        b = evaluate(e.b, grid, env, stage, True)
        return np.where(cond, a, b)
    if isinstance(e, E.Binary):
        a = evaluate(e.a, grid, env, stage, guarded)
        b = evaluate(e.b, grid, env, stage, guarded)
        return BINARY[e.op](a, b)
    if isinstance(e, E.Compare):
        a = evaluate(e.a, grid, env, stage, guarded)
        b = evaluate(e.b, grid, env, stage, guarded)
        return COMPARE[e.op](a, b)
    if isinstance(e, E.Logical):
        a = evaluate(e.a, grid, env, stage, guarded)
        if e.b is None:
            return np.logical_not(a)
        b = evaluate(e.b, grid, env, stage, guarded)
        return np.logical_and(a, b) if e.op == "and" else np.logical_or(a, b)
    if isinstance(e, E.Call):
        args = [evaluate(x, grid, env, stage, guarded) for x in e.args]
        return CALLS[e.fn](*args)
    if isinstance(e, E.Cast):
        v = np.asarray(evaluate(e.value, grid, env, stage, guarded))
        return v.astype(np.float64 if dtypes.is_float_dtype(e.dtype) else NP_DTYPES[e.dtype])
    if isinstance(e, E.Reduce):
        raise WorkloadError(f"stage {stage.name}: a reduction must be the whole right side")
    raise TypeError(f"not an expression: {e!r}")


def _load(e: E.Load, grid, env, stage: Stage, guarded: bool):
    values = env[e.tensor][load_index(e, grid, env, stage, guarded)]
    return values.astype(np.float64) if values.dtype.kind == "f" else values


def load_index(e: E.Load, grid, env, stage: Stage, guarded: bool) -> tuple[np.ndarray, ...]:
    """The index arrays a load reads at (checked in bounds, or clamped where ``guarded``)."""
    arr = env[e.tensor]
    idx = []
    for dim, ix in enumerate(e.indices):
        v = np.asarray(evaluate(ix, grid, env, stage, guarded))
        n = arr.shape[dim]
        if guarded:  # an untaken select arm may index out of bounds: gather anything in bounds
            v = np.clip(v, 0, n - 1)
        elif v.size and (v.min() < 0 or v.max() >= n):
            raise WorkloadError(
                f"stage {stage.name}: {e} reads {e.tensor} out of bounds "
                f"(dimension {dim} takes {int(v.min())}..{int(v.max())}, extent {n})"
            )
        idx.append(v)
    return tuple(idx)


# ---------------------------------------------------------------- einsum fast path


def product_factors(e: E.Expr) -> list[E.Expr]:
    if isinstance(e, E.Binary) and e.op == "*":
        return product_factors(e.a) + product_factors(e.b)
    return [e]


def einsum_factors(stage: Stage, held_elements: int,
                   shapes: Mapping[str, tuple[int, ...]] | None = None
                   ) -> tuple[dict[str, str], list[tuple[E.Expr, list[str], dict | None]]] | None:
    """For a sum of products: each axis's einsum letter and, per factor, the factor, its own
    axes and their grid (None: a load read as a strided view, :mod:`.strided`, for tensors of
    ``shapes``); None with too many axes or a factor's grid over CHUNK_ELEMENTS and
    ``held_elements`` (the largest tensor held: check_memory counts those) not viewable."""
    extents = stage.extents
    order = list(stage.axes) + [a for a, _ in stage.reduce_axes]
    if len(order) > len(string.ascii_letters):
        return None
    letter = dict(zip(order, string.ascii_letters, strict=False))
    factors: list[tuple[E.Expr, list[str], dict | None]] = []
    for f in product_factors(stage.body):
        own = [a for a in order if a in E.free_vars(f)]
        if math.prod(extents[a] for a in own) > max(CHUNK_ELEMENTS, held_elements):
            if shapes is None or not isinstance(f, E.Load) or not strided.viewable(
                    f, extents, own, shapes[f.tensor]):
                return None
            factors.append((f, own, None))  # read as a strided view, not gathered
            continue
        factors.append((f, own, {a: axis_grid(range(extents[a]), i, len(own))
                                 for i, a in enumerate(own)}))
    return letter, factors


def _sum_of_products(stage: Stage, env: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """``sum(f1 * f2 * ...)`` by einsum over its factors (see einsum_factors), or None."""
    if stage.reduction != "sum" or not dtypes.is_float_dtype(stage.dtype):
        return None
    held = max((np.size(a) for a in env.values()), default=0)
    shapes = {k: np.shape(a) for k, a in env.items()}
    if (plan := einsum_factors(stage, held, shapes)) is None:
        return None
    letter, factors = plan
    operands, subscripts, scalar = [], [], 1.0
    for f, own, grid in factors:
        if grid is None:  # a strided view of the tensor, in float64
            assert isinstance(f, E.Load)
            vals = strided.view(np.asarray(env[f.tensor], np.float64), f, stage.extents, own)
        else:
            with np.errstate(all="ignore"):
                vals = np.asarray(evaluate(f, grid, env, stage, guarded=False), np.float64)
        if not own:
            scalar *= float(vals)
            continue
        operands.append(np.broadcast_to(vals, tuple(stage.extents[a] for a in own)))
        subscripts.append("".join(letter[a] for a in own))
    used = set("".join(subscripts))
    kept = [a for a in stage.axes if letter[a] in used]
    spec = ",".join(subscripts) + "->" + "".join(letter[a] for a in kept)
    out = np.einsum(spec, *operands, optimize=True) * scalar
    # Spatial axes no factor depends on: broadcast along them.
    out = out.reshape([stage.extents[a] if a in kept else 1 for a in stage.axes])
    return np.array(np.broadcast_to(out, stage.shape), dtype=np.float64)  # 0-d stays 0-d
