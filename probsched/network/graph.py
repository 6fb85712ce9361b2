"""What an imported model is: a graph of ops in topological order, each op one ONNX node
made into stages of probsched's IR.

An :class:`Op` does not hold stages; it holds how to emit them (``emit``) into whatever
workload it ends up in, so that fusion (:mod:`.fusion`) can put several ops into one task.
Its ``family`` is what fusion reads: an ``anchor`` (convolution, matmul), a ``reduce``
(pooling, softmax, normalisation, reductions) or ``injective`` (elementwise, broadcast and
layout ops). Values are named by their ONNX names; constants (initializers, Constant nodes
and whatever folds to one) are numpy arrays beside the ops. ``str(graph)`` prints it, one
line per input, constant and op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..ir.compute import Stage, Tensor, WorkloadBuilder
from ..ir.expr import Expr, ExprLike, Load

ANCHOR, REDUCE, INJECTIVE = "anchor", "reduce", "injective"
FAMILIES = (ANCHOR, REDUCE, INJECTIVE)


class Readable(Protocol):
    """What an op's stages read: a task's input, a stage, or a view of one stored in another
    layout (:class:`~.channels_last.PermutedView`)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, idx: ExprLike | tuple[ExprLike, ...]) -> Load: ...


class StageWriter(Protocol):
    """Where an op's ``emit`` defines its stages: an :class:`Emitter`, or one that stores
    them in another layout (:class:`~.channels_last.ChannelsLastWriter`)."""

    def compute(self, base: str, index: Sequence, value: ExprLike | Expr,
                **kw: Any) -> Readable: ...


Emit = Callable[[StageWriter, Sequence[Readable]], Readable]


class Emitter:
    """The workload being built for one task: stages get canonical names (``conv0``,
    ``add1``, ...) by position, so identical tasks print identically whatever the model
    calls their tensors."""

    def __init__(self, name: str):
        self.wb = WorkloadBuilder(name)
        self._count = 0
        self._inputs = 0

    def input(self, shape: Sequence[int]) -> Tensor:
        """The next input, ``x0``, ``x1``, ... in the order the task reads them."""
        self._inputs += 1
        return self.wb.input(f"x{self._inputs - 1}", shape)

    def compute(self, base: str, index: Sequence, value: ExprLike | Expr, **kw) -> Stage:
        """A stage named ``base`` plus its position in the task."""
        name = f"{base}{self._count}"
        self._count += 1
        return self.wb.compute(name, index, value, **kw)


@dataclass(frozen=True, eq=False)
class Op:
    """One node of the model: reads ``inputs`` (value names; scalar constants are folded into
    ``emit``), writes ``output`` of ``shape``."""

    node: str
    kind: str
    family: str
    inputs: tuple[str, ...]
    output: str
    shape: tuple[int, ...]
    emit: Emit

    def __post_init__(self) -> None:
        assert self.family in FAMILIES, self.family

    def __str__(self) -> str:
        return (f"{self.output} = {self.kind}({', '.join(self.inputs)})  "
                f"{dims(self.shape)}  [{self.node}]")


@dataclass(frozen=True, eq=False)
class PermuteOp(Op):
    """An op that only reorders its input's axes: ``output = input.transpose(perm)`` (an
    ONNX Transpose, or a layout transform the layout pass inserts, :mod:`.layout`)."""

    perm: tuple[int, ...] = ()

    def __str__(self) -> str:
        return (f"{self.output} = {self.kind}({self.inputs[0]}, perm={list(self.perm)})  "
                f"{dims(self.shape)}  [{self.node}]")


def dims(shape: Sequence[int]) -> str:
    """``1x3x8x8``; ``scalar`` for a shape of no dimensions."""
    return "x".join(str(n) for n in shape) or "scalar"


@dataclass
class Graph:
    """Inputs (name -> shape), constants (name -> float32 array), ops in topological order,
    outputs (names), and the model's name (its file's stem, else the ONNX graph's name)."""

    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    name: str = "model"

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of a value: an input, a constant or an op's output."""
        if name in self.inputs:
            return self.inputs[name]
        if name in self.constants:
            return tuple(self.constants[name].shape)
        for op in self.ops:
            if op.output == name:
                return op.shape
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"graph {self.name}"]
        lines += [f"input {n}  {dims(s)}" for n, s in self.inputs.items()]
        lines += [f"const {n}  {dims(c.shape)}" for n, c in sorted(self.constants.items())]
        lines += [str(op) for op in self.ops]
        lines += [f"output {n}" for n in self.outputs]
        return "\n".join(lines)

    def consumers(self) -> dict[str, list[int]]:
        """Value name -> indices of the ops reading it."""
        out: dict[str, list[int]] = {}
        for k, op in enumerate(self.ops):
            for v in op.inputs:
                out.setdefault(v, []).append(k)
        return out
