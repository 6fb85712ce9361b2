"""The one printer: expressions, workloads and programs as readable text.

Golden tests compare this text, so it is deterministic and stable. The nodes print through
this module, which imports them: so ``str(expr)``, ``str(program)`` and ``workload.text()``
are set at the end of it, and ``probsched.ir`` imports it before anything else can print.
"""

from __future__ import annotations

import math

from . import expr as E
from .compute import Workload
from .program import LoopKind, Program, Scope

# Binding strength; higher binds tighter.
_PREC = {
    "or": 1,
    "and": 2,
    "not": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "==": 4,
    "!=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "//": 6,
    "%": 6,
}
_ATOM = 10


def format_const(value: int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _fmt(e: E.Expr) -> tuple[str, int]:
    if isinstance(e, E.Const):
        text = format_const(e.value)
        return text, (_ATOM if not text.startswith("-") else 5)
    if isinstance(e, E.Var):
        return e.name, _ATOM
    if isinstance(e, E.Load):
        return f"{e.tensor}[{', '.join(format_expr(i) for i in e.indices)}]", _ATOM
    if isinstance(e, E.Binary):
        if e.op in ("min", "max"):
            return f"{e.op}({format_expr(e.a)}, {format_expr(e.b)})", _ATOM
        return _infix(e.op, e.a, e.b), _PREC[e.op]
    if isinstance(e, E.Compare):
        return _infix(e.op, e.a, e.b), _PREC[e.op]
    if isinstance(e, E.Logical):
        if e.b is None:
            text, prec = _fmt(e.a)
            return "not " + (text if prec > _PREC["not"] else f"({text})"), _PREC["not"]
        return _infix(e.op, e.a, e.b), _PREC[e.op]
    if isinstance(e, E.Call):
        return f"{e.fn}({', '.join(format_expr(a) for a in e.args)})", _ATOM
    if isinstance(e, E.Cast):
        return f"{e.dtype}({format_expr(e.value)})", _ATOM
    if isinstance(e, E.Select):
        args = ", ".join(format_expr(x) for x in (e.cond, e.a, e.b))
        return f"select({args})", _ATOM
    if isinstance(e, E.Reduce):
        return f"{e.kind}({format_expr(e.body)})", _ATOM
    raise TypeError(f"not an expression: {e!r}")


def _infix(op: str, a: E.Expr, b: E.Expr) -> str:
    prec = _PREC[op]
    ta, pa = _fmt(a)
    tb, pb = _fmt(b)
    if pa < prec or (prec == 4 and pa == 4):
        ta = f"({ta})"
    # A right operand at equal precedence is parenthesised: trees are built left-leaning, so
    # ``a + (b + c)`` is a different (float) grouping and must print differently.
    if pb <= prec:
        tb = f"({tb})"
    return f"{ta} {op} {tb}"


def format_expr(e: E.Expr) -> str:
    return _fmt(e)[0]


def _shape(dtype: str, shape: tuple[int, ...]) -> str:
    return f"{dtype}[{', '.join(str(s) for s in shape)}]"


def format_workload(wl: Workload) -> str:
    """``workload NAME(params):`` then inputs and stages, one per line."""
    params = ", ".join(f"{k}={v}" for k, v in wl.params)
    lines = [f"workload {wl.name}({params}):"]
    for t in wl.inputs:
        lines.append(f"  input {t.name}: {_shape(t.dtype, t.shape)}")
    for s in wl.stages:
        left = f"{s.name}[{', '.join(s.axes)}]: {_shape(s.dtype, s.shape)}"
        right = format_expr(s.value)
        if s.reduce_axes:
            right += " over " + ", ".join(f"{a} < {n}" for a, n in s.reduce_axes)
        lines.append(f"  {left} = {right}")
    return "\n".join(lines)


def format_program(program: Program) -> str:
    params = ", ".join(
        f"{n}: {_shape(program.buffer(n).dtype, program.buffer(n).shape)}" for n in program.inputs
    )
    outs = ", ".join(
        f"{n}: {_shape(program.buffer(n).dtype, program.buffer(n).shape)}" for n in program.outputs
    )
    lines = [f"program {program.name}({params}) -> {outs}"]
    for b in program.buffers:
        if b.scope in (Scope.GLOBAL, Scope.LOCAL, Scope.SHARED):
            aligned = "".join(f" align(axis={a}, factor={f}, offset={o})"
                              for a, f, o in b.align)
            lines.append(f"  {b.scope.value} {b.name}: {_shape(b.dtype, b.shape)}{aligned}")
    kinds = {
        LoopKind.SERIAL: "range",
        LoopKind.PARALLEL: "parallel",
        LoopKind.VECTORIZED: "vectorized",
        LoopKind.UNROLLED: "unrolled",
        **{k: k.value for k in LoopKind if k.is_bound},  # for by in blockIdx.y(16):
    }

    def emit(nodes, depth: int) -> None:
        pad = "  " * depth
        for node in nodes:
            if hasattr(node, "var"):
                ann = ""
                if node.annotations:
                    ann = " [" + ", ".join(f"{k}={v}" for k, v in node.annotations) + "]"
                lines.append(f"{pad}for {node.var} in {kinds[node.kind]}({node.extent}){ann}:")
                emit(node.body, depth + 1)
            else:
                _emit_block(node, pad, lines)

    emit(program.body, 1)
    return "\n".join(lines)


def _emit_block(block, pad: str, lines: list[str]) -> None:
    spatial = [
        f"{iv.name}={format_expr(b)}"
        for iv, b in zip(block.iter_vars, block.bindings, strict=True)
        if not iv.reduce
    ]
    reduce = [
        f"{iv.name}={format_expr(b)}"
        for iv, b in zip(block.iter_vars, block.bindings, strict=True)
        if iv.reduce
    ]
    head = ", ".join(spatial)
    if reduce:
        head += ("; " if spatial else "") + f"{block.reduction or 'reduce'} " + ", ".join(reduce)
    lines.append(f"{pad}block {block.name}({head}):")
    inner = pad + "  "
    if block.predicate is not None:
        lines.append(f"{inner}where {format_expr(block.predicate)}")
    if block.init is not None:
        lines.append(f"{inner}init {_store(block.init)}")
    lines.append(f"{inner}{_store(block.body)}")


def _store(st) -> str:
    return f"{st.buffer}[{', '.join(format_expr(i) for i in st.indices)}] = {format_expr(st.value)}"


E.Expr.__str__ = format_expr  # type: ignore[method-assign, assignment]
Program.__str__ = format_program  # type: ignore[method-assign, assignment]
Workload.text = format_workload  # type: ignore[method-assign, assignment]
