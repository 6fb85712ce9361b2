"""Static checks of a rule or space body: unknown names and functions and wrong arities, found
without running it (arities of primitives and queries come from the registry)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import Location, ProbschedError
from ..schedule import INSTRUCTIONS, QUERIES
from . import ast
from .builtins import BUILTINS, CONSTANTS, FUNCTIONS
from .errors import SchedError, did_you_mean, located
from .interpreter import Code, bind_problem


def check_code(code: Code, rules: Mapping[str, Code[ast.RuleDef]]) -> None:
    """Raise a located :class:`SchedError` for the first problem in ``code``."""
    node = code.node
    defined = set(CONSTANTS)
    if isinstance(node, ast.RuleDef):
        defined |= {p.name for p in node.params}
    _assigned(node.body, defined)

    def err(message: str, loc: Location) -> ProbschedError:
        return located(SchedError, message, loc, code.source)

    def expr(e) -> None:
        if isinstance(e, ast.Name):
            if e.id not in defined:
                raise err(f"name '{e.id}' is not defined", e.loc)
        elif isinstance(e, ast.Call):
            for a in e.args:
                expr(a)
            for _, v in e.kwargs:
                expr(v)
            call(e)
        elif isinstance(e, ast.ListExpr):
            for x in e.items:
                expr(x)
        elif isinstance(e, ast.Index):
            expr(e.value)
            for x in e.indices:
                expr(x)
        elif isinstance(e, ast.BinOp | ast.Compare | ast.BoolOp):
            expr(e.left)
            expr(e.right)
        elif isinstance(e, ast.UnaryOp):
            expr(e.operand)

    def call(e: ast.Call) -> None:
        kwargs = {k: None for k, _ in e.kwargs}
        if e.func in rules:
            problem = bind_problem(rules[e.func].node.params, len(e.args), kwargs)
            if problem:
                raise err(f"{e.func}(): {problem}", e.loc)
            return
        declared = INSTRUCTIONS.get(e.func) or QUERIES.get(e.func)
        if declared is not None:
            try:
                declared.signature.bind(*e.args, **kwargs)
            except TypeError as exc:
                raise err(f"{e.func}(): {exc}", e.loc) from None
        elif e.func not in FUNCTIONS:
            known = [*rules, *BUILTINS, *INSTRUCTIONS]
            raise err(did_you_mean(f"unknown function '{e.func}'", e.func, known), e.loc)

    def stmts(body) -> None:
        for s in body:
            if isinstance(s, ast.Assign | ast.ExprStmt):
                expr(s.value)
            elif isinstance(s, ast.Return):
                for v in s.values:
                    expr(v)
            elif isinstance(s, ast.If):
                for cond, b in s.branches:
                    expr(cond)
                    stmts(b)
                stmts(s.orelse)
            elif isinstance(s, ast.For):
                expr(s.iter)
                stmts(s.body)

    if isinstance(node, ast.RuleDef):
        for p in node.params:
            if p.default is not None:
                expr(p.default)
    stmts(node.body)


def _assigned(body, names: set[str]) -> None:
    for s in body:
        if isinstance(s, ast.Assign):
            names.update(s.targets)
        elif isinstance(s, ast.For):
            names.add(s.target)
            _assigned(s.body, names)
        elif isinstance(s, ast.If):
            for _, b in s.branches:
                _assigned(b, names)
            _assigned(s.orelse, names)
