"""Workloads: typed inputs plus stages written in index notation.

A stage ``C[i, j] = sum(A[i, k] * B[k, j])`` has the spatial axes of its left side (``i, j``)
and reduces over the axes that appear only on the right (``k``). Axis extents are inferred from
the positions where an axis indexes a tensor directly; an axis used only inside arithmetic
(``X[y * 2 + r]``) needs its extent given.

>>> from probsched.ir.compute import WorkloadBuilder, axes
>>> from probsched.ir.ops import reduce_sum
>>> wb = WorkloadBuilder("mm")
>>> A, B = wb.input("A", (4, 8)), wb.input("B", (8, 2))
>>> i, j, k = axes("i j k")
>>> C = wb.compute("C", (i, j), reduce_sum(A[i, k] * B[k, j]))
>>> wl = wb.build()
>>> C.shape, C.reduce_axes, wl.flops
((4, 2), (('k', 8),), 128)
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import InferenceError, WorkloadError
from . import dtypes, validate
from . import expr as E
from .expr import Expr, Load, Reduce, Var


def axes(names: str) -> tuple[Var, ...]:
    """``i, j, k = axes("i j k")``."""
    return tuple(Var(n) for n in names.split())


class _Indexable:
    """Tensors and stages index into loads: ``A[i, k]``."""

    __slots__ = ()
    name: str
    shape: tuple[int, ...]

    def __getitem__(self, idx: E.ExprLike | tuple[E.ExprLike, ...]) -> Load:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != len(self.shape):
            raise WorkloadError(
                f"{self.name} has {len(self.shape)} dimensions but is indexed with {len(idx)}"
            )
        return Load(self.name, tuple(E.as_expr(x) for x in idx))


@dataclass(frozen=True, slots=True)
class Tensor(_Indexable):
    """A workload input."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if any(not isinstance(s, int) or s <= 0 for s in self.shape):
            raise WorkloadError(f"input {self.name}: shape {self.shape} must be positive ints")
        validate.check_size(f"input {self.name}", self.shape)
        if self.dtype not in E.DTYPES:
            raise WorkloadError(f"input {self.name}: unknown dtype {self.dtype!r}")


@dataclass(frozen=True, slots=True)
class Stage(_Indexable):
    """One computed tensor. ``value`` is the right side; a top-level :class:`Reduce` makes it a
    reduction over ``reduce_axes``."""

    name: str
    axes: tuple[str, ...]
    value: Expr
    shape: tuple[int, ...]
    reduce_axes: tuple[tuple[str, int], ...]
    dtype: str

    @property
    def reduction(self) -> str | None:
        return self.value.kind if isinstance(self.value, Reduce) else None

    @property
    def body(self) -> Expr:
        """The reduced expression (or the whole value for a non-reduction)."""
        return self.value.body if isinstance(self.value, Reduce) else self.value

    @property
    def extents(self) -> dict[str, int]:
        return dict(zip(self.axes, self.shape, strict=True)) | dict(self.reduce_axes)


def placeholder(name: str, shape: Sequence[int], dtype: str = "float32") -> Tensor:
    return Tensor(name, tuple(int(s) for s in shape), dtype)


def _check_name(name: str) -> None:
    if not name.isidentifier():
        raise WorkloadError(f"{name!r} is not a valid name")


def compute(
    name: str,
    index: Sequence[Var | str],
    value: E.ExprLike,
    *,
    shape: Sequence[int] | None = None,
    extents: Mapping[str, int] | None = None,
    dtype: str | None = None,
    tensors: Mapping[str, Tensor | Stage],
) -> Stage:
    """Define a stage reading ``tensors`` (by name); axis extents are inferred from direct
    uses unless given by ``shape`` (the left side's axes) or ``extents`` (any axis)."""
    _check_name(name)
    ax = tuple(a.name if isinstance(a, Var) else a for a in index)
    for a in ax:
        _check_name(a)
    if len(set(ax)) != len(ax):
        raise WorkloadError(f"stage {name}: repeated axis in [{', '.join(ax)}]")
    value = E.as_expr(value)
    body = value.body if isinstance(value, Reduce) else value
    for node in E.walk(body):
        if isinstance(node, Reduce):
            raise WorkloadError(
                f"stage {name}: a reduction must be the whole right side; "
                "put the nested one in a stage of its own"
            )
    given = dict(extents or {})
    if shape is not None:
        if len(shape) != len(ax):
            raise WorkloadError(f"stage {name}: shape {tuple(shape)} does not match axes {ax}")
        given.update(zip(ax, (int(s) for s in shape), strict=True))
    inferred = _infer_extents(name, body, tensors, given)
    inferred.update(given)
    used = E.free_vars(body)
    missing = [a for a in ax if a not in inferred]
    if missing:
        raise InferenceError(
            f"stage {name}: cannot infer the extent of axis {', '.join(missing)}; give shape=",
            stage=name, axes=tuple(missing), reduction=False)
    if isinstance(value, Reduce):
        if value.kind not in E.REDUCE_KINDS:
            raise WorkloadError(f"stage {name}: unknown reduction {value.kind!r}")
        red_names = sorted(used - set(ax), key=_first_use_order(body))
        no_extent = [r for r in red_names if r not in inferred]
        if no_extent:
            raise InferenceError(
                f"stage {name}: cannot infer the extent of reduction axis "
                f"{', '.join(no_extent)}; give extents=",
                stage=name, axes=tuple(no_extent), reduction=True)
        reduce_axes = tuple((r, inferred[r]) for r in red_names)
        if not reduce_axes:
            raise WorkloadError(f"stage {name}: {value.kind}() has no axis to reduce over")
    else:
        extra = used - set(ax)
        if extra:
            raise WorkloadError(
                f"stage {name}: axis {', '.join(sorted(extra))} is not on the left side; "
                "wrap the right side in sum(), max() or min() to reduce over it"
            )
        reduce_axes = ()
    out_shape = tuple(inferred[a] for a in ax)
    for a, n in list(zip(ax, out_shape, strict=True)) + list(reduce_axes):
        if not isinstance(n, int) or n <= 0:
            raise WorkloadError(f"stage {name}: axis {a} has extent {n}; must be positive")
    validate.check_size(f"stage {name}", out_shape, [n for _, n in reduce_axes])
    validate.check_constants(name, body)
    dt = dtype or dtypes.infer_dtype(
        body, lambda t: tensors[t].dtype if t in tensors else "float32")
    if dt == "bool":
        raise WorkloadError(f"stage {name}: value is a condition; wrap it in select()")
    return Stage(name, ax, value, out_shape, reduce_axes, dt)


def _first_use_order(body: Expr):
    order: dict[str, int] = {}
    for node in E.walk(body):
        if isinstance(node, Var) and node.name not in order:
            order[node.name] = len(order)
    return lambda n: order.get(n, len(order))


def _infer_extents(
    stage: str, body: Expr, tensors: Mapping[str, Tensor | Stage], given: Mapping[str, int]
) -> dict:
    found: dict[str, int] = {}
    for ld in E.loads(body):
        tensor = tensors.get(ld.tensor)
        if tensor is None:
            continue
        shape = tensor.shape
        if len(ld.indices) != len(shape):
            raise WorkloadError(
                f"stage {stage}: {ld.tensor} has {len(shape)} dimensions but is indexed "
                f"with {len(ld.indices)}"
            )
        for dim, ix in enumerate(ld.indices):
            if isinstance(ix, Var) and ix.name not in given:
                n = shape[dim]
                if ix.name in found and found[ix.name] != n:
                    # An axis indexing dimensions of different sizes: the smaller is the
                    # extent only if explicitly requested; be strict instead of guessing.
                    raise WorkloadError(
                        f"stage {stage}: axis {ix.name} indexes dimensions of extent "
                        f"{found[ix.name]} and {n}; give its extent explicitly"
                    )
                found[ix.name] = n
    return found


class WorkloadBuilder:
    """Collects inputs and stages in order; ``build()`` makes the validated :class:`Workload`.

    The builder is what lets ``compute`` infer extents from the shapes of the tensors read.
    """

    def __init__(self, name: str, params: Mapping[str, int | float | str] | None = None):
        self.name = name
        self.params = tuple((params or {}).items())
        self._inputs: list[Tensor] = []
        self._stages: list[Stage] = []
        self._tensors: dict[str, Tensor | Stage] = {}

    def input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> Tensor:
        t = placeholder(name, shape, dtype)
        self._add(t)
        self._inputs.append(t)
        return t

    def compute(self, name: str, index: Sequence[Var | str], value: E.ExprLike, **kw) -> Stage:
        """Add a stage; it is validated at once (its loads against the tensors so far), so
        an error names it, and a workload of many stages builds in linear time."""
        s = compute(name, index, value, tensors=self._tensors, **kw)
        if s.name in self._tensors:
            raise WorkloadError(f"workload {self.name}: {s.name} defined twice")
        validate.stage(self.name, s, self._tensors)
        self._add(s)
        self._stages.append(s)
        return s

    def _add(self, t: Tensor | Stage) -> None:
        if t.name in self._tensors:
            raise WorkloadError(f"workload {self.name}: {t.name} defined twice")
        self._tensors[t.name] = t

    def build(self) -> Workload:
        return Workload(self.name, tuple(self._inputs), tuple(self._stages), self.params)


@dataclass(frozen=True)
class Workload:
    """Inputs and stages; the last stage is the output.

    Validation checks that every load names an input or an earlier stage with the right rank,
    and that loads outside a ``select`` stay in bounds (interval arithmetic on the indices).
    """

    name: str
    inputs: tuple[Tensor, ...]
    stages: tuple[Stage, ...]
    params: tuple[tuple[str, int | float | str], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "params", tuple(self.params))
        if not self.stages:
            raise WorkloadError(f"workload {self.name}: no stages")
        seen: dict[str, Tensor | Stage] = {}
        for t in self.inputs:
            if t.name in seen:
                raise WorkloadError(f"workload {self.name}: {t.name} defined twice")
            seen[t.name] = t
        for s in self.stages:
            if s.name in seen:
                raise WorkloadError(f"workload {self.name}: {s.name} defined twice")
            validate.stage(self.name, s, seen)
            seen[s.name] = s

    @property
    def output(self) -> Stage:
        return self.stages[-1]

    @property
    def outputs(self) -> tuple[Stage, ...]:
        return (self.stages[-1],)

    @functools.cached_property
    def _by_name(self) -> dict[str, Tensor | Stage]:
        tensors: tuple[Tensor | Stage, ...] = (*self.inputs, *self.stages)
        return {t.name: t for t in tensors}

    def tensor(self, name: str) -> Tensor | Stage:
        t = self._by_name.get(name)
        if t is None:
            raise WorkloadError(f"workload {self.name} has no tensor {name!r}")
        return t

    def stage(self, name: str) -> Stage:
        s = self._by_name.get(name)
        if not isinstance(s, Stage):
            raise WorkloadError(f"workload {self.name} has no stage {name!r}")
        return s

    def dtype_of(self, name: str) -> str:
        return self.tensor(name).dtype

    @property
    def flops(self) -> int:
        """Floating-point operations: per point, the arithmetic in the body plus one combine
        for reductions (so matmul counts 2 * n * m * k)."""
        total = 0
        for s in self.stages:
            per_point = _count_flops(s.body, self.dtype_of)
            if s.reduction is not None:
                per_point += 1
            points = math.prod(s.shape) * math.prod(n for _, n in s.reduce_axes)
            total += per_point * points
        return total

    def text(self) -> str:
        """A canonical text form (also the basis of :attr:`structural_hash`); the printer
        (``printer.py``) provides it."""
        raise NotImplementedError("probsched.ir.printer is not imported")

    @property
    def structural_hash(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return self.text()


def _count_flops(e: Expr, dtype_of) -> int:
    n = 0
    for node in E.walk(e):
        if isinstance(node, E.Binary | E.Call) and dtypes.is_float_dtype(
                dtypes.infer_dtype(node, dtype_of)):
            n += 1
    return n
