"""Expressions shared by workloads and programs.

Expressions are frozen, hashable trees. Arithmetic on them builds new trees with light constant
folding, so that index arithmetic made by schedule primitives (``i_0 * 16 + i_1``) stays
readable:

>>> from probsched.ir.expr import Var
>>> i, k = Var("i"), Var("k")
>>> print(i * 2 + k - 1)
i * 2 + k - 1
>>> print((i + 0) * 1)
i
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import WorkloadError

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

ARITH_OPS = ("+", "-", "*", "/", "//", "%", "min", "max")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
LOGICAL_OPS = ("and", "or")
CALL_FNS = ("exp", "log", "sqrt", "abs", "tanh", "erf")
REDUCE_KINDS = ("sum", "max", "min")


class Expr:
    """Base of expression nodes; Python operators build :class:`Binary` and :class:`Compare`."""

    __slots__ = ()

    def __add__(self, other: ExprLike) -> Expr:
        return binary("+", self, other)

    def __radd__(self, other: ExprLike) -> Expr:
        return binary("+", other, self)

    def __sub__(self, other: ExprLike) -> Expr:
        return binary("-", self, other)

    def __rsub__(self, other: ExprLike) -> Expr:
        return binary("-", other, self)

    def __mul__(self, other: ExprLike) -> Expr:
        return binary("*", self, other)

    def __rmul__(self, other: ExprLike) -> Expr:
        return binary("*", other, self)

    def __truediv__(self, other: ExprLike) -> Expr:
        return binary("/", self, other)

    def __rtruediv__(self, other: ExprLike) -> Expr:
        return binary("/", other, self)

    def __floordiv__(self, other: ExprLike) -> Expr:
        return binary("//", self, other)

    def __mod__(self, other: ExprLike) -> Expr:
        return binary("%", self, other)

    def __neg__(self) -> Expr:
        return binary("-", Const(0), self)

    def __lt__(self, other: ExprLike) -> Expr:
        return Compare("<", self, as_expr(other))

    def __le__(self, other: ExprLike) -> Expr:
        return Compare("<=", self, as_expr(other))

    def __gt__(self, other: ExprLike) -> Expr:
        return Compare(">", self, as_expr(other))

    def __ge__(self, other: ExprLike) -> Expr:
        return Compare(">=", self, as_expr(other))


ExprLike = Expr | int | float | bool


@dataclass(frozen=True, slots=True, eq=True, repr=False)
class Const(Expr):
    """A literal. ``dtype`` None means "takes the type its context needs" (Python literals)."""

    value: int | float | bool
    dtype: str | None = None

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


@dataclass(frozen=True, slots=True, repr=False)
class Var(Expr):
    """An index variable: a stage axis, a block iteration variable or a loop variable."""

    name: str

    def __repr__(self) -> str:
        return f"Var({self.name})"


@dataclass(frozen=True, slots=True, repr=False)
class Load(Expr):
    """Element of a tensor (in a workload) or buffer (in a program), by name."""

    tensor: str
    indices: tuple[Expr, ...]

    def __repr__(self) -> str:
        return f"Load({self})"


@dataclass(frozen=True, slots=True, repr=False)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr


@dataclass(frozen=True, slots=True, repr=False)
class Compare(Expr):
    op: str
    a: Expr
    b: Expr


@dataclass(frozen=True, slots=True, repr=False)
class Logical(Expr):
    """``and`` / ``or`` of two conditions, or ``not`` of one (then ``b`` is None)."""

    op: str
    a: Expr
    b: Expr | None = None


@dataclass(frozen=True, slots=True, repr=False)
class Call(Expr):
    fn: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, repr=False)
class Cast(Expr):
    dtype: str
    value: Expr


@dataclass(frozen=True, slots=True, repr=False)
class Select(Expr):
    """``cond ? a : b``. Only the chosen side is evaluated (it may hold out-of-bounds loads)."""

    cond: Expr
    a: Expr
    b: Expr


@dataclass(frozen=True, slots=True, repr=False)
class Reduce(Expr):
    """A reduction over the axes that appear only on the right of a stage definition."""

    kind: str
    body: Expr


def as_expr(x: ExprLike) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, bool | int | float):
        return Const(x)
    raise WorkloadError(f"cannot use {x!r} of type {type(x).__name__} in an expression")


def _const_value(e: Expr) -> int | float | None:
    if isinstance(e, Const) and not isinstance(e.value, bool):
        return e.value
    return None


def fold(op: str, x: int | float, y: int | float) -> int | float | None:
    """``x op y`` for constants (Python semantics), or None when undefined here."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "min":
        return min(x, y)
    if op == "max":
        return max(x, y)
    if isinstance(x, int) and isinstance(y, int) and y != 0:
        if op == "//":
            return x // y
        if op == "%":
            return x % y
    if op == "/" and y != 0 and (isinstance(x, float) or isinstance(y, float)):
        return x / y
    return None


def binary(op: str, a: ExprLike, b: ExprLike) -> Expr:
    """Build ``a op b``, folding constants and the identities x+0, x*1, x*0, x//1, x%1."""
    if not isinstance(a, Expr):
        a = as_expr(a)
    if not isinstance(b, Expr):
        b = as_expr(b)
    if type(a) is not Const and type(b) is not Const:
        return Binary(op, a, b)
    ca, cb = _const_value(a), _const_value(b)
    typed = (isinstance(a, Const) and a.dtype) or (isinstance(b, Const) and b.dtype)
    if ca is not None and cb is not None and not typed:
        folded = fold(op, ca, cb)
        if folded is not None:
            return Const(folded)
    if op == "+":
        if cb == 0 and cb is not None and isinstance(cb, int):
            return a
        if ca == 0 and ca is not None and isinstance(ca, int):
            return b
    elif op == "-":
        if cb == 0 and isinstance(cb, int):
            return a
    elif op == "*":
        if cb == 1 and isinstance(cb, int):
            return a
        if ca == 1 and isinstance(ca, int):
            return b
        if (cb == 0 and isinstance(cb, int)) or (ca == 0 and isinstance(ca, int)):
            if _is_index(a) and _is_index(b):
                return Const(0)
    elif op in ("//", "%"):
        if cb == 1 and isinstance(cb, int):
            return a if op == "//" else Const(0)
    return Binary(op, a, b)


def _is_index(e: Expr) -> bool:
    """True for integer index arithmetic (vars and int constants only)."""
    if isinstance(e, Var):
        return True
    if isinstance(e, Const):
        return isinstance(e.value, int) and not isinstance(e.value, bool)
    if isinstance(e, Binary):
        return _is_index(e.a) and _is_index(e.b)
    return False


# ---------------------------------------------------------------- traversal


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Const | Var):
        return ()
    if isinstance(e, Load):
        return e.indices
    if isinstance(e, Binary | Compare):
        return (e.a, e.b)
    if isinstance(e, Logical):
        return (e.a,) if e.b is None else (e.a, e.b)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Cast):
        return (e.value,)
    if isinstance(e, Select):
        return (e.cond, e.a, e.b)
    if isinstance(e, Reduce):
        return (e.body,)
    raise TypeError(f"not an expression: {e!r}")


def walk(e: Expr) -> Iterator[Expr]:
    """Pre-order iteration over ``e`` and all its sub-expressions."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def free_vars(e: Expr) -> set[str]:
    out: set[str] = set()
    _collect_vars(e, out)
    return out


def _collect_vars(e: Expr, out: set[str]) -> None:
    # Hot in search (every replay substitutes bindings): dispatch on the exact type.
    if type(e) is Var:
        out.add(e.name)
    elif type(e) is Binary or type(e) is Compare:
        _collect_vars(e.a, out)
        _collect_vars(e.b, out)
    elif type(e) is not Const:
        for k in children(e):
            _collect_vars(k, out)


def loads(e: Expr) -> list[Load]:
    return [n for n in walk(e) if isinstance(n, Load)]


def rebuild(e: Expr, kids: tuple[Expr, ...]) -> Expr:
    """``e`` with its children replaced by ``kids`` (same count), re-folding arithmetic."""
    if isinstance(e, Load):
        return Load(e.tensor, kids)
    if isinstance(e, Binary):
        return binary(e.op, kids[0], kids[1])
    if isinstance(e, Compare):
        return Compare(e.op, kids[0], kids[1])
    if isinstance(e, Logical):
        return Logical(e.op, kids[0], kids[1] if len(kids) > 1 else None)
    if isinstance(e, Call):
        return Call(e.fn, kids)
    if isinstance(e, Cast):
        return Cast(e.dtype, kids[0])
    if isinstance(e, Select):
        return Select(kids[0], kids[1], kids[2])
    if isinstance(e, Reduce):
        return Reduce(e.kind, kids[0])
    return e


def transform(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Post-order rewrite: ``fn(node)`` returns a replacement or None to keep the node."""
    kids = children(e)
    if kids:
        new_kids = tuple(transform(k, fn) for k in kids)
        if any(n is not o for n, o in zip(new_kids, kids, strict=True)):
            e = rebuild(e, new_kids)
    out = fn(e)
    return e if out is None else out


def substitute(e: Expr, mapping: Mapping[str, Expr]) -> Expr:
    """Replace variables by expressions. ``substitute(i + 1, {"i": j * 2}) == j * 2 + 1``.
    Unchanged subtrees are returned as they are (the same objects)."""
    if not mapping:
        return e
    if type(e) is Var:
        return mapping.get(e.name, e)
    if type(e) is Const:
        return e
    if type(e) is Binary:
        a, b = substitute(e.a, mapping), substitute(e.b, mapping)
        return e if a is e.a and b is e.b else binary(e.op, a, b)
    kids = children(e)
    new = tuple(substitute(k, mapping) for k in kids)
    if all(n is o for n, o in zip(new, kids, strict=True)):
        return e
    return rebuild(e, new)


def rename_loads(e: Expr, mapping: Mapping[str, str]) -> Expr:
    def visit(n: Expr) -> Expr | None:
        if isinstance(n, Load) and n.tensor in mapping:
            return Load(mapping[n.tensor], n.indices)
        return None

    return transform(e, visit)
