"""The language's own functions (``len range min max`` and the dtypes as conversions), which the
interpreter calls (the registry's queries are builtins too), and what its values need beyond
Python's operators: their names in messages, equality of lists within the limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..schedule import QUERIES, RV
from ..values import is_int, is_number
from . import ast

if TYPE_CHECKING:
    from .interpreter import Code, Interpreter

FUNCTIONS = ("len", "range", "min", "max", "int32", "int64", "float32", "float64")
BUILTINS = (*FUNCTIONS, *QUERIES)
CONSTANTS = {"true": True, "false": False}


def call_builtin(run: Interpreter, e: ast.Call, args: list, kwargs: dict, code: Code) -> Any:
    """Call builtin ``e.func`` (one of FUNCTIONS) on the evaluated arguments."""
    if kwargs:
        raise run.error(f"{e.func}() takes no keyword arguments", e.loc, code)
    f = e.func
    vals = [run.value(a) for a in args]
    if f == "len":
        if len(vals) != 1 or not isinstance(vals[0], list | tuple | str):
            raise run.error("len() takes one list", e.loc, code)
        return len(vals[0])
    if f == "range":
        if not 1 <= len(vals) <= 3 or not all(is_int(v) for v in vals):
            raise run.error("range() takes 1 to 3 integers", e.loc, code)
        if len(vals) == 3 and vals[2] == 0:
            raise run.error("range() step must not be zero", e.loc, code)
        r = range(*vals)
        run.charge(length(r), "range()", e.loc, code)
        return list(r)
    if f in ("min", "max"):
        items = vals[0] if len(vals) == 1 and isinstance(vals[0], list | tuple) else vals
        items = [run.value(v) for v in items]
        if not items or not all(is_number(v) for v in items):
            raise run.error(f"{f}() takes numbers or a non-empty list of numbers", e.loc, code)
        return min(items) if f == "min" else max(items)
    if len(vals) != 1 or not is_number(vals[0]):
        raise run.error(f"{f}() converts one number", e.loc, code)
    try:
        value = int(vals[0]) if f.startswith("int") else float(vals[0])
    except (OverflowError, ValueError) as exc:
        raise run.error(f"{f}(): {exc}", e.loc, code) from None
    return run.integer(value, e.loc, code)


def equal(run: Interpreter, a: Any, b: Any, e: ast.Compare, code: Code) -> bool:
    """Whether two values are equal, lists item by item (without recursion; each item
    compared is charged, so lists sharing their parts cannot make it long)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if x is y:
            continue
        if not (isinstance(x, list | tuple) and isinstance(y, list | tuple)):
            if isinstance(x, list | tuple) or isinstance(y, list | tuple) or x != y:
                return False
            continue
        if len(x) != len(y):
            return False
        run.charge(len(x), "a list compared", e.loc, code)
        pending.extend(zip(x, y, strict=True))
    return True


def length(r: range) -> int:
    """``len(r)``, also beyond what ``len`` can return (``range(10**30)``)."""
    if r.step > 0:
        return max(0, (r.stop - r.start + r.step - 1) // r.step)
    return max(0, (r.start - r.stop - r.step - 1) // -r.step)


def type_name(v: Any) -> str:
    """How a value is named in messages: 'a block', 'an int', 'a list'."""
    if isinstance(v, RV):
        return {"b": "a block", "l": "a loop", "v": "a sampled value"}[v.kind]
    if v is None:
        return "None"
    return {bool: "a bool", int: "an int", float: "a float", str: "a string",
            list: "a list", tuple: "a list"}.get(type(v), type(v).__name__)


def flat(args: list, kwargs: dict) -> bool:
    """Whether no argument is a list holding a list (no primitive or query takes one)."""
    if not kwargs and not any(isinstance(a, list | tuple) for a in args):
        return True  # the common case: no list at all
    return not any(isinstance(a, list | tuple) and any(isinstance(x, list | tuple) for x in a)
                   for a in (*args, *kwargs.values()))
