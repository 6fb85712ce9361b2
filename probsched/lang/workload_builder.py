"""A workload block of a .sched file -> :class:`~probsched.ir.compute.Workload`.

Parameters are integers (overridable when the workload is built); they may appear in shapes,
``over`` extents and stage expressions. In a stage's right side a name is, in this order, an
axis of the left side or of ``over``, a parameter, an input or earlier stage (indexed: a load),
``inf`` / ``nan`` / ``true`` / ``false``, or else a new axis, reduced over (``sum``, ``max`` or
``min`` must then wrap the whole right side). Every error is located at the offending line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..errors import InferenceError, Location, ProbschedError, WorkloadError
from ..ir import expr as E
from ..ir.compute import Stage, Tensor, Workload, WorkloadBuilder
from . import ast
from .errors import SchedError, located

_CONSTANTS = {"inf": math.inf, "nan": math.nan, "true": True, "false": False}
_UNARY_FNS = {"exp", "log", "sqrt", "abs", "tanh", "erf"}
_DTYPES = ("float32", "float64", "int32", "int64")


class _Builder:
    def __init__(self, wdef: ast.WorkloadDef, source: str):
        self.wdef = wdef
        self.source = source
        self.params: dict[str, int] = {}
        self.tensors: dict[str, int] = {}  # name -> rank
        self.axes: set[str] = set()  # of the stage being built: they shadow the parameters

    def error(self, message: str, loc: Location, cls=WorkloadError) -> ProbschedError:
        return located(cls, message, loc, self.source)

    # ------------------------------------------------ parameters and shapes

    def bind_params(self, overrides: Mapping[str, int]) -> None:
        names = [p.name for p in self.wdef.params]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise self.error(
                f"workload {self.wdef.name} has no parameter {', '.join(unknown)}; "
                f"parameters: {', '.join(names) or '(none)'}", self.wdef.loc, SchedError)
        for p in self.wdef.params:
            if p.name in overrides:
                value = overrides[p.name]
                if not isinstance(value, int) or isinstance(value, bool):
                    raise self.error(f"parameter {p.name} must be an integer, got {value!r}",
                                     p.loc, SchedError)
            elif p.default is None:
                raise self.error(f"parameter {p.name} of workload {self.wdef.name} has no "
                                 "default; give its value", p.loc, SchedError)
            else:
                value = self.integer(p.default, f"parameter {p.name}")
            self.params[p.name] = value

    def integer(self, e: ast.Expr, what: str) -> int:
        """Evaluate an integer expression of the parameters (shapes, extents, defaults)."""
        v = self.int_expr(e)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.error(f"{what}: expected an integer, got {v!r}", e.loc)
        return v

    def int_expr(self, e: ast.Expr):
        """Integer arithmetic of the parameters; with comparisons and ``and or not`` too, for
        ``require`` (an ``integer`` elsewhere refuses their bools)."""
        if isinstance(e, ast.Const):
            return e.value
        if isinstance(e, ast.Compare):
            a, b = self.int_expr(e.left), self.int_expr(e.right)
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b,
                    "!=": a != b}[e.op]
        if isinstance(e, ast.BoolOp):
            a = self.int_expr(e.left)
            if bool(a) == (e.op == "or"):
                return a
            return self.int_expr(e.right)
        if isinstance(e, ast.UnaryOp) and e.op == "not":
            return not self.int_expr(e.operand)
        if isinstance(e, ast.Name):
            if e.id in self.params:
                return self.params[e.id]
            raise self.error(f"unknown parameter '{e.id}'", e.loc)
        if isinstance(e, ast.UnaryOp) and e.op in "+-":
            v = self.int_expr(e.operand)
            return -v if e.op == "-" else v
        if isinstance(e, ast.BinOp) and e.op in ("+", "-", "*", "//", "%"):
            a, b = self.int_expr(e.left), self.int_expr(e.right)
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (a, b)):
                raise self.error("shapes and extents are integer arithmetic", e.loc)
            if e.op in ("//", "%") and b == 0:
                raise self.error("division by zero", e.loc)
            return {"+": a + b, "-": a - b, "*": a * b, "//": a // b if b else 0,
                    "%": a % b if b else 0}[e.op]
        if isinstance(e, ast.Call) and e.func in ("min", "max") and len(e.args) == 2:
            a, b = (self.int_expr(x) for x in e.args)
            return min(a, b) if e.func == "min" else max(a, b)
        raise self.error("shapes and extents are integer arithmetic of the parameters", e.loc)

    def shape(self, dims: tuple[ast.Expr, ...], what: str) -> tuple[int, ...]:
        out = []
        for d in dims:
            n = self.integer(d, what)
            if n <= 0:
                raise self.error(f"{what}: extent {n} must be positive", d.loc)
            out.append(n)
        return tuple(out)

    # ------------------------------------------------ stage expressions

    def expr(self, e: ast.Expr, top: bool = False) -> E.Expr:
        if isinstance(e, ast.Const):
            if isinstance(e.value, bool | int | float):
                return E.Const(e.value)
            raise self.error(f"{e.value!r} cannot be used in a compute expression", e.loc)
        if isinstance(e, ast.Name):
            if e.id in self.axes:
                return E.Var(e.id)
            if e.id in self.params:
                return E.Const(self.params[e.id])
            if e.id in _CONSTANTS:
                return E.Const(_CONSTANTS[e.id])
            if e.id in self.tensors:
                raise self.error(f"{e.id} is a tensor; index it: {e.id}[...]", e.loc)
            return E.Var(e.id)
        if isinstance(e, ast.Index):
            if not isinstance(e.value, ast.Name) or e.value.id not in self.tensors:
                what = e.value.id if isinstance(e.value, ast.Name) else "this"
                raise self.error(f"{what} is not an input or an earlier stage", e.loc)
            rank = self.tensors[e.value.id]
            if len(e.indices) != rank:
                raise self.error(f"{e.value.id} has {rank} dimensions but is indexed with "
                                 f"{len(e.indices)}", e.loc)
            return E.Load(e.value.id, tuple(self.expr(i) for i in e.indices))
        if isinstance(e, ast.BinOp):
            return E.binary(e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.Compare):
            return E.Compare(e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.BoolOp):
            return E.Logical(e.op, self.expr(e.left), self.expr(e.right))
        if isinstance(e, ast.UnaryOp):
            x = self.expr(e.operand)
            if e.op == "not":
                return E.Logical("not", x)
            return E.binary("-", E.Const(0), x) if e.op == "-" else x
        if isinstance(e, ast.Call):
            return self.call(e, top)
        raise self.error("lists cannot be used in a compute expression", e.loc)

    def call(self, e: ast.Call, top: bool) -> E.Expr:
        if e.kwargs:
            raise self.error(f"{e.func}() takes no keyword arguments", e.loc)
        n = len(e.args)

        def want(k: int) -> None:
            if n != k:
                raise self.error(f"{e.func}() takes {k} argument{'s' * (k > 1)}, got {n}", e.loc)

        if e.func == "sum" or (e.func in ("min", "max") and n == 1):
            want(1)
            if not top:
                raise self.error(f"a reduction {e.func}() must be the whole right side; put it "
                                 "in a stage of its own", e.loc)
            return E.Reduce(e.func, self.expr(e.args[0]))
        args = [self.expr(a) for a in e.args]
        if e.func in ("min", "max"):
            want(2)
            return E.binary(e.func, *args)
        if e.func in _UNARY_FNS:
            want(1)
            return E.Call(e.func, (args[0],))
        if e.func == "select":
            want(3)
            return E.Select(*args)
        if e.func in _DTYPES:
            want(1)
            return E.Cast(e.func, args[0])
        raise self.error(f"unknown function '{e.func}' in a compute expression; known: sum, "
                         "max, min, exp, log, sqrt, abs, select and the dtypes", e.loc)

    # ------------------------------------------------ the whole workload

    def require(self, r: ast.Require) -> None:
        """Check a ``require`` on the parameters, naming those it reads when it fails."""
        if not self.int_expr(r.cond):
            names = [n.id for n in _names(r.cond)]
            values = ", ".join(f"{n}={self.params[n]}" for n in dict.fromkeys(names))
            raise self.error(f"workload {self.wdef.name}: requirement {r.text} fails"
                             + (f" for {values}" if values else ""), r.loc)

    def build(self, overrides: Mapping[str, int]) -> Workload:
        self.bind_params(overrides)
        for item in self.wdef.items:
            if isinstance(item, ast.Require):
                self.require(item)
        wb = WorkloadBuilder(self.wdef.name, self.params)
        for item in self.wdef.items:
            if isinstance(item, ast.Require):
                continue
            try:
                tensor: Tensor | Stage
                if isinstance(item, ast.InputDecl):
                    shape = self.shape(item.shape, f"input {item.name}")
                    tensor = wb.input(item.name, shape, item.dtype)
                else:
                    tensor = self.stage(wb, item)  # validated at once: errors point at it
            except InferenceError as exc:
                raise self.error(_how_to_give(exc, item), item.loc) from None
            except ProbschedError as exc:
                if exc.location is not None:
                    raise
                raise self.error(exc.message, item.loc) from None
            self.tensors[item.name] = len(tensor.shape)
        try:
            return wb.build()
        except ProbschedError as exc:
            raise self.error(exc.message, self.wdef.loc) from None

    def stage(self, wb: WorkloadBuilder, s: ast.StageDecl) -> Stage:
        self.axes = {*s.axes, *(ax.name for ax in s.over)}
        value = self.expr(s.value, top=True)
        extents = {}
        for ax in s.over:
            if ax.name in s.axes:
                raise self.error(f"{ax.name} is a spatial axis of {s.name}, not a reduction axis",
                                 ax.loc)
            extents[ax.name] = self.shape((ax.extent,), f"reduction axis {ax.name}")[0]
        shape = None if s.shape is None else self.shape(s.shape, f"stage {s.name}")
        return wb.compute(s.name, s.axes, value, shape=shape, extents=extents or None,
                          dtype=s.dtype)


def _names(e: ast.Expr) -> list[ast.Name]:
    """The names in ``e``, in order (iteratively)."""
    out, stack = [], [e]
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Name):
            out.append(x)
        elif isinstance(x, ast.BinOp | ast.Compare | ast.BoolOp):
            stack += [x.right, x.left]
        elif isinstance(x, ast.UnaryOp):
            stack.append(x.operand)
        elif isinstance(x, ast.Call):
            stack += reversed(x.args)
    return out


def _how_to_give(exc: InferenceError, item: ast.InputDecl | ast.StageDecl) -> str:
    """The .sched way to give extents that cannot be inferred (``compute`` names the Python
    keyword arguments)."""
    axes = ", ".join(exc.axes)
    what = (f"axis {axes}: it indexes" if len(exc.axes) == 1 else f"axes {axes}: they index")
    what = f"stage {exc.stage}: cannot infer the extent of {'reduction ' * exc.reduction}{what}"
    assert isinstance(item, ast.StageDecl)
    left = f"{exc.stage}[{', '.join(item.axes)}]"
    if exc.reduction:
        overs = ", ".join(f"{a} < N" for a in exc.axes)
        return f"{what} no tensor directly; give it after the value: {left} = ... over {overs}"
    dims = ", ".join("N" if a in exc.axes else f"<extent of {a}>" for a in item.axes)
    return (f"{what} no tensor directly; give the stage's type and shape: "
            f"{left}: {item.dtype or 'float32'}[{dims}] = ...")


def build_workload(wdef: ast.WorkloadDef, source: str = "",
                   params: Mapping[str, int] | None = None) -> Workload:
    """Build the workload ``wdef`` with its parameters overridden by ``params``."""
    return _Builder(wdef, source).build(params or {})
