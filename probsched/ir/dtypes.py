"""Types of expressions: what dtype an expression has (index arithmetic is int64, conditions
bool, untyped literals adapt to the other operand), which dtypes are floats, and the value a
reduction starts from.

>>> from probsched.ir.expr import Var, Const
>>> infer_dtype(Var("i") * 2, lambda t: "float32"), infer_dtype(Const(1.5), lambda t: "")
('int64', 'float32')
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import WorkloadError
from .expr import (
    FLOAT_DTYPES,
    INT_DTYPES,
    REDUCE_KINDS,
    Binary,
    Call,
    Cast,
    Compare,
    Const,
    Expr,
    Load,
    Logical,
    Reduce,
    Select,
    Var,
)


def infer_dtype(e: Expr, tensor_dtype: Callable[[str], str]) -> str:
    """The dtype of ``e``: "int64" for index arithmetic, "bool" for conditions.

    Untyped literals adapt to the other operand; a float literal in integer context makes
    float32.
    """
    if isinstance(e, Const):
        if e.dtype is not None:
            return e.dtype
        if isinstance(e.value, bool):
            return "bool"
        return "int64" if isinstance(e.value, int) else "float32"
    if isinstance(e, Var):
        return "int64"
    if isinstance(e, Load):
        return tensor_dtype(e.tensor)
    if isinstance(e, Compare | Logical):
        return "bool"
    if isinstance(e, Cast):
        return e.dtype
    if isinstance(e, Call):
        t = infer_dtype(e.args[0], tensor_dtype)
        return t if t in FLOAT_DTYPES or e.fn == "abs" else "float32"
    if isinstance(e, Reduce):
        return infer_dtype(e.body, tensor_dtype)
    if isinstance(e, Select):
        return _join(e.a, e.b, tensor_dtype)
    if isinstance(e, Binary):
        t = _join(e.a, e.b, tensor_dtype)
        if e.op == "/" and t in INT_DTYPES:
            return "float32"
        return t
    raise TypeError(f"not an expression: {e!r}")


def _is_literal(e: Expr) -> bool:
    return isinstance(e, Const) and e.dtype is None


def join_dtype(a: Expr, b: Expr, tensor_dtype: Callable[[str], str]) -> str:
    """The dtype both operands of a binary operation are brought to."""
    return _join(a, b, tensor_dtype)


def _join(a: Expr, b: Expr, tensor_dtype: Callable[[str], str]) -> str:
    ta, tb = infer_dtype(a, tensor_dtype), infer_dtype(b, tensor_dtype)
    if ta == tb:
        return ta
    if _is_literal(a) and not _is_literal(b):
        return tb if not (ta == "float32" and tb in INT_DTYPES) else "float32"
    if _is_literal(b) and not _is_literal(a):
        return ta if not (tb == "float32" and ta in INT_DTYPES) else "float32"
    order = ("bool", "int32", "int64", "float32", "float64")
    return max(ta, tb, key=order.index)



def is_float_dtype(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def identity_of(kind: str, dtype: str) -> int | float:
    """The value a reduction starts from: 0 for sum, -inf/+inf for max/min."""
    if kind == "sum":
        return 0.0 if is_float_dtype(dtype) else 0
    bits = 64 if dtype == "int64" else 32
    if kind == "max":
        return -math.inf if is_float_dtype(dtype) else -(2 ** (bits - 1))
    if kind == "min":
        return math.inf if is_float_dtype(dtype) else 2 ** (bits - 1) - 1
    raise WorkloadError(f"unknown reduction {kind!r}; expected one of {', '.join(REDUCE_KINDS)}")
