"""The checks of a workload's definition: sizes within the limits, integer constants that fit
64 bits, and every load of a stage naming an input or earlier stage with the right rank and,
outside a ``select``, staying in bounds (interval arithmetic on the indices).

:mod:`.compute` runs them as each tensor and stage is defined, so an error names the one at
fault and a workload of many stages is checked in linear time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import WorkloadError
from . import dtypes, intervals
from . import expr as E
from .expr import Expr, Load

if TYPE_CHECKING:
    from .compute import Stage, Tensor

MAX_ELEMENTS = 2**40
"""Elements of a tensor, and iterations of a reduction axis: 4 TiB of float32, beyond any
machine's memory, so never a real size; it keeps every extent, offset and fused loop well
inside 64-bit arithmetic (and tile sampling's factorizations fast)."""

MAX_AXES = 32
"""Dimensions of a tensor, and axes of a stage (spatial and reduction): each becomes a loop,
and a schedule nests at most 64 of them (numpy's arrays have at most 64 dimensions)."""

INT64_RANGE = (-(2**63), 2**63)  # what an integer constant of a compute expression must lie in


def check_size(what: str, shape: Sequence[int], reduce: Sequence[int] = ()) -> None:
    """Refuse more than MAX_AXES axes, or more than MAX_ELEMENTS elements or iterations."""
    if len(shape) + len(reduce) > MAX_AXES:
        axes = "axes (spatial and reduction)" if reduce else "dimensions"
        raise WorkloadError(f"{what}: {len(shape) + len(reduce)} {axes}, more than {MAX_AXES} "
                            "(the limit)")
    counts = [(math.prod(shape), "elements"), *((n, "iterations of a reduction") for n in reduce)]
    for n, of in counts:
        if n > MAX_ELEMENTS:
            raise WorkloadError(f"{what}: {n} {of}, more than 2**40 (the limit, 4 TiB of "
                                "float32)")


def check_constants(stage: str, body: Expr) -> None:
    """Refuse an integer constant beyond 64 bits (numpy and the generated code compute in them)."""
    lo, hi = INT64_RANGE
    for node in E.walk(body):
        if isinstance(node, E.Const) and type(node.value) is int and not lo <= node.value < hi:
            raise WorkloadError(f"stage {stage}: the constant {node.value} does not fit a 64-bit "
                                "integer")


def stage(wl: str, s: Stage, seen: Mapping[str, Tensor | Stage]) -> None:
    """Check the loads of stage ``s`` against the tensors ``seen`` before it."""
    ranges = {a: (0, n - 1) for a, n in zip(s.axes, s.shape, strict=True)}
    ranges.update({a: (0, n - 1) for a, n in s.reduce_axes})
    _check_loads(wl, s, s.body, seen, ranges, guarded=False)


def _check_loads(wl, s: Stage, e: Expr, seen, ranges, guarded: bool) -> None:
    if isinstance(e, E.Select):
        _check_loads(wl, s, e.cond, seen, ranges, guarded)
        _check_loads(wl, s, e.a, seen, ranges, True)
        _check_loads(wl, s, e.b, seen, ranges, True)
        return
    if isinstance(e, Load):
        t = seen.get(e.tensor)
        if t is None:
            raise WorkloadError(
                f"workload {wl}, stage {s.name}: {e.tensor} is not an input or an earlier stage"
            )
        if len(e.indices) != len(t.shape):
            raise WorkloadError(
                f"workload {wl}, stage {s.name}: {e.tensor} has {len(t.shape)} dimensions "
                f"but is indexed with {len(e.indices)}"
            )
        for dim, ix in enumerate(e.indices):
            if dtypes.infer_dtype(ix, lambda n: seen[n].dtype) not in E.INT_DTYPES:
                raise WorkloadError(
                    f"workload {wl}, stage {s.name}: index {ix} of {e.tensor} is not an integer"
                )
            b = intervals.bounds(ix, ranges)
            if not guarded and b is not None and (b[0] < 0 or b[1] >= t.shape[dim]):
                raise WorkloadError(
                    f"workload {wl}, stage {s.name}: {e} reads {e.tensor} out of bounds "
                    f"(dimension {dim} ranges over {b[0]}..{b[1]}, extent {t.shape[dim]}); "
                    "guard it with select()"
                )
    for k in E.children(e):
        _check_loads(wl, s, k, seen, ranges, guarded)
