"""Our plain data as JSON text, for sending to other machines (the Dask builder and runner).

Workloads, programs, targets, compiled kernels and measurement results are frozen dataclasses
of plain values; :func:`dumps` writes one as JSON (a dataclass as ``{"@": name, field: ...}``,
tuples as arrays, bytes as base64, enum members by value) and :func:`loads` rebuilds it
through the classes' own constructors, so every check they make runs again on arrival.
Only the classes in :data:`CLASSES` are made: the text names data, never code (no pickle).

>>> import probsched as ps
>>> wl = ps.workloads.gmm(b=1, n=4, m=4, k=4)
>>> loads(dumps(wl)) == wl
True
>>> program = ps.Schedule(wl).program
>>> str(loads(dumps(program))) == str(program)
True
"""

from __future__ import annotations

import base64
import dataclasses
import json
from enum import Enum
from typing import Any

from ..codegen.compile import CompiledArtifact
from ..codegen.gpu_kernel import GpuKernel, PtxasReport
from ..codegen.runtime import ArgSpec, KernelSignature
from ..errors import ProbschedError
from ..ir import expr as E
from ..ir.compute import Stage, Tensor, Workload
from ..ir.program import Block, Buffer, IterVar, Loop, LoopKind, Program, Scope, Store
from ..measure.builder import BuildResult
from ..measure.runner import RunConfig, RunResult
from ..target import CpuTarget, CudaTarget

CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    E.Const, E.Var, E.Load, E.Binary, E.Compare, E.Logical, E.Call, E.Cast, E.Select,
    E.Reduce, Tensor, Stage, Workload, Buffer, IterVar, Store, Block, Loop, Program,
    CpuTarget, CudaTarget, ArgSpec, KernelSignature, CompiledArtifact, GpuKernel, PtxasReport,
    BuildResult, RunResult, RunConfig)}
"""The dataclasses :func:`loads` may make, by name."""

ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (LoopKind, Scope)}


class WireError(ProbschedError):
    """Text that is not one of our values, or a value we do not send."""


def dumps(value: Any) -> str:
    """``value`` (made of :data:`CLASSES`, enums, tuples, frozensets, bytes and JSON
    scalars) as JSON text."""
    return json.dumps(_encode(value), separators=(",", ":"))


def loads(text: str) -> Any:
    """The value :func:`dumps` wrote."""
    try:
        return _decode(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise WireError(f"cannot read a probsched value: {exc}") from None


def _encode(x: Any) -> Any:
    if isinstance(x, Enum):  # first: a StrEnum member is a str too
        return {"@enum": type(x).__name__, "value": x.value}
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, tuple | list):
        return [_encode(v) for v in x]
    if isinstance(x, frozenset):
        return {"@set": sorted(_encode(v) for v in x)}
    if isinstance(x, bytes):
        return {"@bytes": base64.b64encode(x).decode()}
    name = type(x).__name__
    if dataclasses.is_dataclass(x) and CLASSES.get(name) is type(x):
        out: dict[str, Any] = {"@": name}
        for f in dataclasses.fields(x):
            if f.init:
                out[f.name] = _encode(getattr(x, f.name))
        return out
    raise WireError(f"cannot send a {name}: not one of probsched's data classes")


def _decode(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_decode(v) for v in x)
    if not isinstance(x, dict):
        return x
    if "@bytes" in x:
        return base64.b64decode(x["@bytes"])
    if "@set" in x:
        return frozenset(_decode(v) for v in x["@set"])
    if "@enum" in x:
        return ENUMS[x["@enum"]](x["value"])
    cls = CLASSES.get(x.get("@", ""))
    if cls is None:
        raise WireError(f"unknown class {x.get('@')!r}")
    return cls(**{k: _decode(v) for k, v in x.items() if k != "@"})


__all__ = ["CLASSES", "WireError", "dumps", "loads"]
