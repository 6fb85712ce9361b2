"""Runs a space against a :class:`~probsched.schedule.Schedule`, addressing its random choices.

Values are ints, floats, bools, strings, lists, None and the schedule's random variables. A
call is, in this order of lookup, a rule (a ``def``), a builtin (``len range min max`` and
the dtypes as conversions), a query (the registry's ``QUERIES``, of the program or the
target: the Schedule method of that name) or a primitive (the registry's ``INSTRUCTIONS``).
A sampled integer used in arithmetic, a comparison, a condition
or as a list index stands for its value (``sch.get(rv)``); passed to a primitive it stays a
random variable, so the trace links the two.

**Addresses.** Every sampling call gets an address: the dynamic path to it (the call sites of
the enclosing rule calls and the enclosing loops with their iteration index) then its own call
site, written ``matmul.sched:14:5[2] > rules/common.sched:3:10``. The schedule records each
decision under its address and, where its decision map has one for that address, uses it
instead of sampling (``Schedule(..., decisions=...)``). Running the same space with the
decisions a run recorded repeats that run exactly, so without data-dependent control flow
this is trace replay; with it, a changed decision may take another branch and the rest of
the program still runs (and stays legal).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import Location, ProbschedError, ScheduleError
from ..schedule import INSTRUCTIONS, QUERIES, RV, Schedule
from ..values import is_number
from . import ast
from .builtins import BUILTINS, CONSTANTS, FUNCTIONS, call_builtin, equal, flat, type_name
from .errors import SchedError, did_you_mean, located
from .limits import (
    CALL_WORK,
    MAX_CALL_DEPTH,
    MAX_INT_DIGITS,
    MAX_ITEM_WORK,
    MAX_ITEMS,
    MAX_PROGRAM_WORK,
    MAX_RUN_NESTING,
    MAX_STEPS,
)

_INT_BOUND = 10**MAX_INT_DIGITS

Def = TypeVar("Def", ast.SpaceDef, ast.RuleDef)


@dataclass(frozen=True, eq=False)
class Code(Generic[Def]):
    """A space or rule body and where it came from: the source text (for error context) and
    the unit name its addresses use (the file, relative to the root module's folder)."""

    node: Def
    source: str
    unit: str

    @property
    def name(self) -> str:
        return self.node.name

    @functools.cached_property
    def nesting(self) -> int:
        """How deep blocks and expressions nest in the definition (see ``ast.nesting``)."""
        return ast.nesting(self.node)[0]


class _Return:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}
_COMPARE = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


class Interpreter:
    """One run of a space: the schedule and the rules in scope."""

    def __init__(self, sch: Schedule, rules: Mapping[str, Code[ast.RuleDef]]):
        self.sch = sch
        self.rules = rules
        self.steps = 0  # statements run
        self.work = 0  # list items and string characters built or compared
        self.program_work = 0  # loops and blocks of the program at each primitive and query
        self._sized: tuple[Any, int] = (None, 0)  # the program last measured and its size
        self.calls = 0  # rule calls active
        self.nesting = 0  # the nesting of the space and the rules active, summed
        self.path: list[str] = []

    # ------------------------------------------------ entry points

    def run_space(self, code: Code) -> None:
        self.nesting = code.nesting
        self.run_body(code.node.body, {}, code)

    def run_body(self, body: tuple[ast.Stmt, ...], env: dict, code: Code) -> _Return | None:
        for stmt in body:
            out = self.exec(stmt, env, code)
            if out is not None:
                return out
        return None

    def error(self, message: str, loc: Location, code: Code, cls=SchedError) -> ProbschedError:
        return located(cls, message, loc, code.source)

    def charge(self, n: int, what: str, loc: Location, code: Code) -> None:
        """Account for building (or comparing) ``what`` of ``n`` items or characters."""
        if n > MAX_ITEMS:
            unit = "characters" if what == "a string" else "items"
            raise self.error(f"{what} of {n} {unit} is longer than {MAX_ITEMS} (the limit)", loc,
                             code)
        self.work += n
        if self.work > MAX_ITEM_WORK:
            raise self.error(f"the space built or compared more than {MAX_ITEM_WORK} list items "
                             "and string characters in all (the limit)", loc, code)

    def charge_program(self, loc: Location, code: Code) -> None:
        """Account for a primitive or query, which goes over the program's loops and blocks."""
        program = self.sch.program
        if program is not self._sized[0]:  # its loops and blocks
            self._sized = (program, sum(map(len, program.paths())))
        self.program_work += self._sized[1] + CALL_WORK
        if self.program_work > MAX_PROGRAM_WORK:
            raise self.error(f"the space's primitives and queries went over more than "
                             f"{MAX_PROGRAM_WORK} loops and blocks in all (the limit: each call "
                             f"counts the program's size and {CALL_WORK})", loc, code)

    def integer(self, v: Any, loc: Location, code: Code) -> Any:
        """``v``, unless it is an integer of more than MAX_INT_DIGITS digits."""
        if type(v) is int and not -_INT_BOUND < v < _INT_BOUND:
            raise self.error(f"an integer of more than {MAX_INT_DIGITS} digits (the limit)", loc,
                             code)
        return v

    # ------------------------------------------------ statements

    def exec(self, s: ast.Stmt, env: dict, code: Code) -> _Return | None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.error(f"the space ran more than {MAX_STEPS} statements (the limit)", s.loc,
                             code)
        if isinstance(s, ast.Assign):
            value = self.eval(s.value, env, code)
            if len(s.targets) == 1:
                env[s.targets[0]] = value
                return None
            if not isinstance(value, list | tuple):
                raise self.error(f"cannot unpack {type_name(value)} into "
                                 f"{len(s.targets)} names", s.loc, code)
            if len(value) != len(s.targets):
                raise self.error(f"cannot unpack {len(value)} values into "
                                 f"{len(s.targets)} names", s.loc, code)
            env.update(zip(s.targets, value, strict=True))
            return None
        if isinstance(s, ast.ExprStmt):
            self.eval(s.value, env, code)
            return None
        if isinstance(s, ast.If):
            for cond, body in s.branches:
                if self.truth(self.eval(cond, env, code)):
                    return self.run_body(body, env, code)
            return self.run_body(s.orelse, env, code)
        if isinstance(s, ast.For):
            items = self.eval(s.iter, env, code)
            if not isinstance(items, list | tuple):
                raise self.error(f"for needs a list, got {type_name(items)}", s.iter.loc, code)
            site = f"{code.unit}:{s.loc.line}:{s.loc.column}"
            for k, item in enumerate(items):
                env[s.target] = item
                self.path.append(f"{site}[{k}]")
                try:
                    out = self.run_body(s.body, env, code)
                finally:
                    self.path.pop()
                if out is not None:
                    return out
            return None
        if isinstance(s, ast.Return):
            if not s.values:
                return _Return(None)
            values = [self.eval(v, env, code) for v in s.values]
            return _Return(values[0] if len(values) == 1 else values)
        return None  # Pass

    # ------------------------------------------------ expressions

    def eval(self, e: ast.Expr, env: dict, code: Code) -> Any:
        if isinstance(e, ast.Name):
            if e.id in env:
                return env[e.id]
            if e.id in CONSTANTS:
                return CONSTANTS[e.id]
            raise self.error(did_you_mean(f"name '{e.id}' is not defined", e.id, env), e.loc,
                             code)
        if isinstance(e, ast.Const):
            return e.value
        method = _EVAL.get(type(e))  # the other nodes, by type: no chain of tests
        if method is None:
            raise TypeError(f"not an expression: {e!r}")
        return method(self, e, env, code)

    def list_expr(self, e: ast.ListExpr, env: dict, code: Code) -> list:
        self.charge(len(e.items), "a list", e.loc, code)
        return [self.eval(x, env, code) for x in e.items]

    def binary(self, e: ast.BinOp | ast.Compare, env: dict, code: Code) -> Any:
        a = self.value(self.eval(e.left, env, code))
        b = self.value(self.eval(e.right, env, code))
        if isinstance(e, ast.BinOp):
            return self.arith(e, a, b, code)
        return self.compare(e, a, b, code)

    def boolop(self, e: ast.BoolOp, env: dict, code: Code) -> Any:
        a = self.eval(e.left, env, code)
        if self.truth(a) == (e.op == "or"):
            return a
        return self.eval(e.right, env, code)

    def unary(self, e: ast.UnaryOp, env: dict, code: Code) -> Any:
        x = self.eval(e.operand, env, code)
        if e.op == "not":
            return not self.truth(x)
        x = self.value(x)
        if not is_number(x):
            raise self.error(f"unary '{e.op}' needs a number, got {type_name(x)}", e.loc, code)
        return -x if e.op == "-" else x

    def value(self, v: Any) -> Any:
        """A sampled value stands for its integer; everything else for itself."""
        if isinstance(v, RV) and v.kind == "v":
            return self.sch.get(v)
        return v

    def truth(self, v: Any) -> bool:
        return bool(self.value(v))

    def arith(self, e: ast.BinOp, a: Any, b: Any, code: Code) -> Any:
        if e.op == "+" and type(a) is type(b) and isinstance(a, list | str):
            self.charge(len(a) + len(b), "a list" if isinstance(a, list) else "a string",
                        e.loc, code)
            return a + b
        if not (is_number(a) and is_number(b)):
            raise self.error(f"unsupported operand types for '{e.op}': {type_name(a)} and "
                             f"{type_name(b)}", e.loc, code)
        if e.op in ("/", "//", "%") and b == 0:
            raise self.error("division by zero", e.loc, code)
        try:
            return self.integer(_ARITH[e.op](a, b), e.loc, code)
        except (OverflowError, ValueError) as exc:
            raise self.error(f"'{e.op}': {exc}", e.loc, code) from None

    def compare(self, e: ast.Compare, a: Any, b: Any, code: Code) -> bool:
        if isinstance(a, list | tuple) or isinstance(b, list | tuple):
            if e.op not in ("==", "!="):
                raise self.error(f"lists compare with '==' and '!=' only, not '{e.op}'", e.loc,
                                 code)
            return equal(self, a, b, e, code) == (e.op == "==")
        try:
            return _COMPARE[e.op](a, b)
        except TypeError:
            raise self.error(f"cannot compare {type_name(a)} and {type_name(b)} with "
                             f"'{e.op}'", e.loc, code) from None

    def index(self, e: ast.Index, env: dict, code: Code) -> Any:
        seq = self.eval(e.value, env, code)
        if len(e.indices) != 1:
            raise self.error("a list takes one index", e.loc, code)
        k = self.value(self.eval(e.indices[0], env, code))
        if not isinstance(seq, list | tuple | str):
            raise self.error(f"cannot index {type_name(seq)}", e.loc, code)
        if not isinstance(k, int) or isinstance(k, bool):
            raise self.error(f"a list index must be an integer, got {type_name(k)}", e.loc, code)
        if not -len(seq) <= k < len(seq):
            raise self.error(f"index {k} out of range for a list of {len(seq)}", e.loc, code)
        return seq[k]

    # ------------------------------------------------ calls

    def call(self, e: ast.Call, env: dict, code: Code) -> Any:
        args = []
        for a in e.args:
            args.append(self.eval(a, env, code))
        kwargs = {}
        for k, v in e.kwargs:
            kwargs[k] = self.eval(v, env, code)
        rule = self.rules.get(e.func)
        if rule is not None:
            return self.call_rule(e, rule, args, kwargs, code)
        if e.func in QUERIES or e.func in INSTRUCTIONS:
            if not flat(args, kwargs):
                raise self.error(f"{e.func}() takes no list of lists", e.loc, code)
            self.charge_program(e.loc, code)
        if e.func in QUERIES:
            return self.call_query(e, args, kwargs, code)
        if e.func in FUNCTIONS:
            return call_builtin(self, e, args, kwargs, code)
        if e.func in INSTRUCTIONS:
            return self.call_primitive(e, args, kwargs, code)
        raise self.error(did_you_mean(f"unknown function '{e.func}'", e.func,
                                      [*self.rules, *BUILTINS, *INSTRUCTIONS]), e.loc, code)

    def call_rule(self, e: ast.Call, rule: Code[ast.RuleDef], args: list, kwargs: dict,
                  code: Code) -> Any:
        if self.calls >= MAX_CALL_DEPTH:
            raise self.error(f"rules nested more than {MAX_CALL_DEPTH} deep (endless "
                             "recursion?)", e.loc, code)
        weight = rule.nesting + 2  # the call, the body, and the body's own nesting
        if self.nesting + weight > MAX_RUN_NESTING:
            raise self.error(
                f"rule calls nested too deeply: with this call of {e.func}, the space and the "
                f"rules running nest {self.nesting + weight} levels in all, more than "
                f"{MAX_RUN_NESTING} (the limit; endless recursion?)", e.loc, code)
        problem = bind_problem(rule.node.params, len(args), kwargs)
        if problem:
            raise self.error(f"{e.func}(): {problem}", e.loc, code)
        env: dict[str, Any] = dict(zip((p.name for p in rule.node.params), args, strict=False))
        for p in rule.node.params[len(args):]:
            if p.name in kwargs:
                env[p.name] = kwargs[p.name]
            else:
                assert p.default is not None  # bind_problem checked
                env[p.name] = self.eval(p.default, {}, rule)
        self.path.append(f"{code.unit}:{e.loc.line}:{e.loc.column}")
        self.calls += 1
        self.nesting += weight
        try:
            out = self.run_body(rule.node.body, env, rule)
        finally:
            self.path.pop()
            self.calls -= 1
            self.nesting -= weight
        return None if out is None else out.value

    def call_query(self, e: ast.Call, args: list, kwargs: dict, code: Code) -> Any:
        if kwargs:
            raise self.error(f"{e.func}() takes no keyword arguments", e.loc, code)
        if not QUERIES[e.func].arity[0] <= len(args) <= QUERIES[e.func].arity[1]:
            try:  # Python's message
                QUERIES[e.func].signature.bind(*args)
            except TypeError as exc:
                raise self.error(f"{e.func}(): {exc}", e.loc, code) from None
        try:
            return getattr(self.sch, e.func)(*args)
        except ProbschedError as exc:
            raise self.error(exc.message, e.loc, code) from None

    def call_primitive(self, e: ast.Call, args: list, kwargs: dict, code: Code) -> Any:
        kind = INSTRUCTIONS[e.func]  # arity was checked statically (checker.py)
        if kind.variadic and len(args) == 1 and isinstance(args[0], list | tuple):
            args = list(args[0])  # reorder(order) is reorder(*order)
        if kind.sampling:
            self.sch.site = " > ".join((*self.path, f"{code.unit}:{e.loc.line}:{e.loc.column}"))
        try:
            out = getattr(self.sch, e.func)(*args, **kwargs)
        except ProbschedError as exc:
            if exc.location is not None:
                raise
            cls = exc.__class__ if isinstance(exc, ScheduleError) else SchedError
            raise self.error(exc.message, e.loc, code, cls) from None
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise self.error(f"{e.func}(): bad arguments ({exc})", e.loc, code) from exc
        finally:
            self.sch.site = None
        return list(out) if isinstance(out, tuple) else out


_EVAL: dict[type, Callable[[Interpreter, Any, dict, Code], Any]] = {
    ast.Call: Interpreter.call, ast.ListExpr: Interpreter.list_expr,
    ast.Index: Interpreter.index, ast.BinOp: Interpreter.binary,
    ast.Compare: Interpreter.binary, ast.BoolOp: Interpreter.boolop,
    ast.UnaryOp: Interpreter.unary,
}


def bind_problem(params: tuple[ast.Param, ...], n_args: int, kwargs) -> str | None:
    """Why a call with ``n_args`` positional arguments and ``kwargs`` does not fit ``params``
    (None when it does)."""
    names = [p.name for p in params]
    if n_args > len(params):
        return f"takes {len(params)} argument{'s' * (len(params) != 1)}, got {n_args}"
    for k in kwargs:
        if k not in names:
            return f"no parameter '{k}'"
        if names.index(k) < n_args:
            return f"parameter '{k}' given twice"
    missing = [p.name for p in params[n_args:] if p.default is None and p.name not in kwargs]
    if missing:
        return f"missing argument{'s' * (len(missing) > 1)} {', '.join(missing)}"
    return None
