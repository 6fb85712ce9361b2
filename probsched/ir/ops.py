"""The operations workloads are written with, beyond Python's operators: ``select``,
``minimum``/``maximum``, the math calls, conditions (``all_of``, ``eq``, ``ne``) and the
reductions.

>>> from probsched.ir.expr import Var
>>> print(select(Var("i") < 4, maximum(Var("i"), 0), 1))
select(i < 4, max(i, 0), 1)
"""

from __future__ import annotations

from ..errors import WorkloadError
from .expr import Call, Compare, Const, Expr, ExprLike, Logical, Reduce, Select, as_expr, binary


def _condition(c: ExprLike) -> Expr:
    if isinstance(c, bool):
        # ``x % 2 == 0`` on expressions is structural equality, a Python bool: almost surely
        # a mistake.
        raise WorkloadError(
            f"condition is the Python value {c}; write eq(a, b) / ne(a, b) "
            "for == and != between expressions"
        )
    return as_expr(c)


def select(cond: ExprLike, a: ExprLike, b: ExprLike) -> Expr:
    return Select(_condition(cond), as_expr(a), as_expr(b))


def minimum(a: ExprLike, b: ExprLike) -> Expr:
    return binary("min", a, b)


def maximum(a: ExprLike, b: ExprLike) -> Expr:
    return binary("max", a, b)


def exp(x: ExprLike) -> Expr:
    return Call("exp", (as_expr(x),))


def log(x: ExprLike) -> Expr:
    return Call("log", (as_expr(x),))


def sqrt(x: ExprLike) -> Expr:
    return Call("sqrt", (as_expr(x),))


def tanh(x: ExprLike) -> Expr:
    return Call("tanh", (as_expr(x),))


def erf(x: ExprLike) -> Expr:
    """The error function, ``2 / sqrt(pi) * integral of exp(-t^2) from 0 to x``."""
    return Call("erf", (as_expr(x),))


def absolute(x: ExprLike) -> Expr:
    return Call("abs", (as_expr(x),))


def all_of(*conds: ExprLike) -> Expr:
    """Conjunction of conditions; ``all_of()`` is the constant True."""
    out: Expr | None = None
    for c in conds:
        c = _condition(c)
        out = c if out is None else Logical("and", out, c)
    return Const(True) if out is None else out


def eq(a: ExprLike, b: ExprLike) -> Expr:
    return Compare("==", as_expr(a), as_expr(b))


def ne(a: ExprLike, b: ExprLike) -> Expr:
    return Compare("!=", as_expr(a), as_expr(b))


def reduce_sum(body: ExprLike) -> Expr:
    return Reduce("sum", as_expr(body))


def reduce_max(body: ExprLike) -> Expr:
    return Reduce("max", as_expr(body))


def reduce_min(body: ExprLike) -> Expr:
    return Reduce("min", as_expr(body))
