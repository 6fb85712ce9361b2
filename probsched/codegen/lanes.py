"""Lane analysis: how a variable or integer expression grows from one vector lane to the next.

In a vectorized loop every variable is known by its lane-0 value and its *lane coefficient*
(how it grows per lane: 1 for the vectorized loop variable, 0 for loop-invariant ones, None
when not affine). That decides each memory access (:mod:`.memory`): coefficient 0 is one
scalar access, 1 a contiguous vector access, anything else a gather or scatter; and what
does not depend on the lane is computed once as a scalar and broadcast (:mod:`.exprs`).
``align`` (a number lane 0 is known to be a multiple of) lets ``//`` and ``%`` of a fused or
reshaped index keep a coefficient.

>>> from probsched.ir import expr as E
>>> from .irtext import Value
>>> i, v = E.Var("i"), E.Var("v")  # i: the same multiple of 64 in all 8 lanes; v: the lane
>>> known = {"i": VarInfo(Value("%i", "int64"), 0, align=64),
...          "v": VarInfo(Value("0", "int64"), 1, align=8)}
>>> coeff(i * 64 + v, known, lanes=8), coeff(v * 4, known, lanes=8)
(1, 4)
>>> coeff((i + v) // 64, known, lanes=8), coeff((i + v) % 64, known, lanes=8)  # one row
(0, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import expr as E
from .irtext import Value


@dataclass
class VarInfo:
    """A variable's lane-0 value (i64), lane coefficient and, in vector context, its vector;
    ``align``: a number the lane-0 value is known to be a multiple of (0: it is 0)."""

    base: Value
    coeff: int | None = 0
    vec: Value | None = None
    align: int = 1


def coeff(e: E.Expr, variables: dict[str, VarInfo], lanes: int) -> int | None:
    """How ``e`` grows per vector lane (0 when invariant), None when not affine; ``lanes``:
    the vector's width (0 outside vector code)."""
    if isinstance(e, E.Const):
        return 0
    if isinstance(e, E.Var):
        return variables[e.name].coeff
    if isinstance(e, E.Binary) and e.op in ("+", "-", "*"):
        ca, cb = coeff(e.a, variables, lanes), coeff(e.b, variables, lanes)
        if ca is None or cb is None:
            return None
        if e.op == "+":
            return ca + cb
        if e.op == "-":
            return ca - cb
        if ca == 0 and cb == 0:
            return 0
        ka, kb = int_const(e.a), int_const(e.b)
        if kb is not None:
            return ca * kb
        if ka is not None:
            return cb * ka
        return None
    if isinstance(e, E.Binary) and e.op in ("//", "%") and lanes:
        return _coeff_divmod(e, variables, lanes)
    return 0 if all(coeff(k, variables, lanes) == 0 for k in E.children(e)) else None


def _coeff_divmod(e: E.Binary, variables: dict[str, VarInfo], lanes: int) -> int | None:
    """``x // d`` and ``x % d`` when the lanes of ``x`` never cross a multiple of ``d``:
    then ``x // d`` is the same in every lane and ``x % d`` grows as ``x`` does. That
    holds when ``d`` is a multiple of the vector's span (lanes x step) and lane 0 of ``x``
    is too (a fused or reshaped index, e.g. ``(i * 64 + v) % 256``)."""
    c, d = coeff(e.a, variables, lanes), int_const(e.b)
    if c is None or d is None or d <= 0:
        return None
    if c == 0:
        return 0 if coeff(e.b, variables, lanes) == 0 else None
    span = lanes * c
    if c < 0 or d % span or align(e.a, variables) % span:
        return None
    return 0 if e.op == "//" else c


def align(e: E.Expr, variables: dict[str, VarInfo]) -> int:
    """A number the lane-0 value of integer ``e`` is a multiple of (0 when it is 0)."""
    if isinstance(e, E.Const):
        k = int_const(e)
        return abs(k) if k is not None else 1
    if isinstance(e, E.Var):
        return variables[e.name].align
    if isinstance(e, E.Binary) and e.op in ("+", "-"):
        return math.gcd(align(e.a, variables), align(e.b, variables))
    if isinstance(e, E.Binary) and e.op == "*":
        return align(e.a, variables) * align(e.b, variables)
    return 1


def depends(e: E.Expr, variables: dict[str, VarInfo]) -> bool:
    """True when ``e`` may differ between lanes."""
    if isinstance(e, E.Var):
        return variables[e.name].coeff != 0
    return any(depends(k, variables) for k in E.children(e))


def int_const(e: E.Expr) -> int | None:
    """The value of an integer constant, else None."""
    if isinstance(e, E.Const) and isinstance(e.value, int) and not isinstance(e.value, bool):
        return e.value
    return None
