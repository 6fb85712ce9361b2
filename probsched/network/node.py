"""One ONNX node as the translators see it (:class:`NodeContext`: attributes, input shapes
and constants, errors naming the node), and the registry of translators by op type.

A translator is ``fn(ctx) -> Op | np.ndarray``: the op its node becomes, or a constant.
Every attribute the node carries must be read (``ctx.attr``); one left unread is refused by
name with the attributes the op supports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError
from .graph import Emit, Graph, Op

Translator = Callable[["NodeContext"], "Op | np.ndarray"]
TRANSLATORS: dict[str, Translator] = {}
ATTRIBUTES: dict[str, tuple[str, ...]] = {}


def translator(*op_types: str, attrs: Sequence[str] = ()) -> Callable[[Translator], Translator]:
    """Register ``fn`` for ``op_types``; ``attrs`` are the attributes they accept."""

    def register(fn: Translator) -> Translator:
        for t in op_types:
            TRANSLATORS[t] = fn
            ATTRIBUTES[t] = tuple(attrs)
        return fn

    return register


@dataclass
class NodeContext:
    """A node being translated: its name, op type, input and output value names ("" for an
    optional input left out), attributes (plain Python values) and the graph so far."""

    name: str
    op_type: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any]
    graph: Graph
    opset: int
    _read: set[str] = field(default_factory=set)

    def error(self, message: str) -> ModelError:
        return ModelError(f"node {self.name!r} ({self.op_type}): {message}")

    def attr(self, key: str, default: Any = None) -> Any:
        """An attribute's value, or ``default`` where the node has none."""
        self._read.add(key)
        return self.attrs.get(key, default)

    def unread_attributes(self) -> list[str]:
        return sorted(set(self.attrs) - self._read)

    def has(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] != ""

    def shape(self, i: int) -> tuple[int, ...]:
        return self.graph.shape(self.inputs[i])

    def const(self, i: int) -> np.ndarray | None:
        """Input ``i``'s value where it is a constant, else None."""
        return self.graph.constants.get(self.inputs[i]) if self.has(i) else None

    def need_const(self, i: int, what: str) -> np.ndarray:
        """Input ``i``'s value; a ModelError where it is not a constant."""
        c = self.const(i)
        if c is None:
            raise self.error(f"{what} (input {i}) must be a constant")
        return c

    def scalar(self, i: int) -> float | None:
        """Input ``i``'s value where it is a constant of one element (folded into the
        expression, not an input of the task)."""
        c = self.const(i)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def axis(self, a: int, rank: int) -> int:
        """A possibly negative axis made non-negative; an error outside ``-rank..rank - 1``."""
        if not -rank <= a < rank:
            raise self.error(f"axis {a} is out of range for rank {rank}")
        return a % rank

    def op(self, kind: str, family: str, inputs: Sequence[str], shape: Sequence[int],
           emit: Emit) -> Op:
        """The op this node becomes."""
        return Op(self.name, kind, family, tuple(inputs), self.output,
                  tuple(int(s) for s in shape), emit)
