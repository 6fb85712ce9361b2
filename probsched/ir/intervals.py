"""Interval bounds of integer index expressions (the ranges of their variables given).
"""

from __future__ import annotations

from collections.abc import Mapping

from .expr import Binary, Const, Expr, Select, Var


def bounds(e: Expr, ranges: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
    """Inclusive integer bounds of index expression ``e`` given inclusive variable ranges.

    Returns None when ``e`` is not integer arithmetic over known variables.

    >>> from probsched.ir.expr import Var
    >>> bounds(Var("i") * 2 + Var("r") - 1, {"i": (0, 9), "r": (0, 2)})
    (-1, 19)
    """
    if isinstance(e, Const):
        if isinstance(e.value, int) and not isinstance(e.value, bool):
            return (e.value, e.value)
        return None
    if isinstance(e, Var):
        return ranges.get(e.name)
    if isinstance(e, Select):
        a, b = bounds(e.a, ranges), bounds(e.b, ranges)
        if a is None or b is None:
            return None
        return (min(a[0], b[0]), max(a[1], b[1]))
    if not isinstance(e, Binary):
        return None
    a, b = bounds(e.a, ranges), bounds(e.b, ranges)
    if a is None or b is None:
        return None
    (alo, ahi), (blo, bhi) = a, b
    if e.op == "+":
        return (alo + blo, ahi + bhi)
    if e.op == "-":
        return (alo - bhi, ahi - blo)
    if e.op == "*":
        corners = (alo * blo, alo * bhi, ahi * blo, ahi * bhi)
        return (min(corners), max(corners))
    if e.op == "min":
        return (min(alo, blo), min(ahi, bhi))
    if e.op == "max":
        return (max(alo, blo), max(ahi, bhi))
    if e.op == "//" and blo == bhi and blo > 0:
        return (alo // blo, ahi // blo)
    if e.op == "%" and blo == bhi and blo > 0:
        if alo // blo == ahi // blo:
            return (alo % blo, ahi % blo)
        return (0, blo - 1)
    return None
