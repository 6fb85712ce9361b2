"""The .sched syntax tree: frozen dataclasses, each with the source location it came from.

One class per grammar rule or alias of ``grammar/sched.lark`` (a few rules share a class:
``call`` covers casts such as ``float32(x)``). Expressions are shared by workloads (where
they build compute expressions) and spaces (where they are evaluated).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import Location

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Name:
    loc: Location
    id: str


@dataclass(frozen=True, slots=True)
class Const:
    """A literal: int, float, string, True/False or None."""

    loc: Location
    value: Any


@dataclass(frozen=True, slots=True)
class ListExpr:
    loc: Location
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Index:
    """``value[i]`` in a space; ``A[i, k]`` (a load) in a workload."""

    loc: Location
    value: Expr
    indices: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """``func(args, key=value)``; ``func`` is a name (a primitive, rule, builtin or dtype)."""

    loc: Location
    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class BinOp:
    """Arithmetic: ``+ - * / // %``."""

    loc: Location
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Compare:
    """``< <= > >= == !=`` (not chained)."""

    loc: Location
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or``, short-circuiting in spaces."""

    loc: Location
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class UnaryOp:
    """``-x``, ``+x`` or ``not x``."""

    loc: Location
    op: str
    operand: Expr


Expr = Name | Const | ListExpr | Index | Call | BinOp | Compare | BoolOp | UnaryOp

# ---------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Assign:
    """``x = e`` or, with several targets, ``a, b = e`` (unpacking a list)."""

    loc: Location
    targets: tuple[str, ...]
    value: Expr


@dataclass(frozen=True, slots=True)
class ExprStmt:
    loc: Location
    value: Expr


@dataclass(frozen=True, slots=True)
class Return:
    """``return``, ``return e`` or ``return a, b`` (a list)."""

    loc: Location
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Pass:
    loc: Location


@dataclass(frozen=True, slots=True)
class If:
    """``if``/``elif`` branches as (condition, body) pairs, then the ``else`` body."""

    loc: Location
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class For:
    loc: Location
    target: str
    iter: Expr
    body: tuple[Stmt, ...]


Stmt = Assign | ExprStmt | Return | Pass | If | For

# ---------------------------------------------------------------- top level


@dataclass(frozen=True, slots=True)
class Use:
    """``use "path.sched"``: the rules of another file (path relative to this one)."""

    loc: Location
    path: str


@dataclass(frozen=True, slots=True)
class Param:
    """A workload or rule parameter, with its default (None: required)."""

    loc: Location
    name: str
    default: Expr | None


@dataclass(frozen=True, slots=True)
class InputDecl:
    """``input A: float32[n, k]``."""

    loc: Location
    name: str
    dtype: str
    shape: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class OverAxis:
    """``r < 3`` in a stage's ``over`` clause: the extent of reduction axis ``r``."""

    loc: Location
    name: str
    extent: Expr


@dataclass(frozen=True, slots=True)
class StageDecl:
    """``C[i, j]: float32[n, m] = value over r < k``; dtype and shape are optional."""

    loc: Location
    name: str
    axes: tuple[str, ...]
    dtype: str | None
    shape: tuple[Expr, ...] | None
    value: Expr
    over: tuple[OverAxis, ...]


@dataclass(frozen=True, slots=True)
class Require:
    """``require ci % groups == 0``: a condition on the workload's parameters; ``text`` is
    the condition as written (for the message when it fails)."""

    loc: Location
    cond: Expr
    text: str


@dataclass(frozen=True, slots=True)
class WorkloadDef:
    loc: Location
    name: str
    params: tuple[Param, ...]
    items: tuple[InputDecl | StageDecl | Require, ...]


@dataclass(frozen=True, slots=True)
class SpaceDef:
    """``space NAME for WORKLOAD:`` (``workload`` None: a space for any workload)."""

    loc: Location
    name: str
    workload: str | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class RuleDef:
    loc: Location
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


Item = Use | WorkloadDef | SpaceDef | RuleDef


@dataclass(frozen=True, slots=True)
class Module:
    """A parsed file: its items in source order, and its text (for error context)."""

    filename: str
    items: tuple[Item, ...]
    source: str = ""

    def of_type(self, cls: type) -> list:
        return [item for item in self.items if isinstance(item, cls)]


# ---------------------------------------------------------------- nesting

_NESTS = (If, For, BinOp, Compare, BoolOp, UnaryOp, Index, ListExpr, Call)


def nesting(node: Any, limit: int | None = None) -> tuple[int, Location | None]:
    """How deep blocks and expressions nest in ``node`` (an item, statement or expression):
    each ``if``, ``for``, operator, comparison, call, index and list counts a level. Also,
    when ``limit`` is given, where a node first lies deeper than it (None if none does).
    Iterative, so any depth is measured without recursion."""
    deepest, beyond = 0, None
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        x, depth = stack.pop()
        if isinstance(x, tuple):
            stack.extend((y, depth) for y in reversed(x))
            continue
        if not hasattr(x, "__dataclass_fields__") or isinstance(x, Location):
            continue  # a name, a literal's value, a location
        if isinstance(x, _NESTS):
            depth += 1
            deepest = max(deepest, depth)
            if limit is not None and depth > limit and beyond is None:
                beyond = x.loc
        stack.extend((getattr(x, f.name), depth) for f in reversed(fields(x)))
    return deepest, beyond
