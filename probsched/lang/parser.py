"""Text to syntax tree: ``parse(text, filename) -> ast.Module``.

The grammar is ``grammar/sched.lark`` at the repository's top, read by
:func:`probsched.lang.grammar.grammar_text` (LALR, strict, positions propagated); it is built
once on first use and cached by Lark. Syntax errors become
:class:`~probsched.errors.SchedSyntaxError` printed as ``FILE:LINE:COL: error: message`` with
the source line and a caret (see :mod:`probsched.lang.syntax_errors` for the messages).
"""

from __future__ import annotations

import functools
import re

import lark
from lark import Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..errors import Location, ProbschedError, SchedSyntaxError
from . import ast
from .errors import located
from .grammar import grammar_text
from .indenter import SchedIndenter
from .limits import MAX_FILE_BYTES, MAX_NESTING, strip_bom
from .syntax_errors import PostlexError, syntax_error, token_location


@functools.cache
def _lark() -> tuple[lark.Lark, SchedIndenter]:
    indenter = SchedIndenter()
    parser = lark.Lark(
        grammar_text(),
        parser="lalr",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=indenter,
        cache=True,
    )
    indenter.keywords = frozenset(
        t.pattern.value for t in parser.terminals
        if t.pattern.type == "str" and t.pattern.value.isidentifier())
    return parser, indenter


# ---------------------------------------------------------------- tree -> AST


def _unescape(text: str) -> str:
    """The value of a string literal (Python/JSON escapes)."""
    body, out, k = text[1:-1], [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
              "/": "/", "b": "\b", "f": "\f"}
    while k < len(body):
        c = body[k]
        if c != "\\":
            out.append(c)
            k += 1
            continue
        e = body[k + 1]
        if e in simple:
            out.append(simple[e])
            k += 2
        elif e == "u" and len(body) >= k + 6 and _is_hex(body[k + 2:k + 6]):
            out.append(chr(int(body[k + 2:k + 6], 16)))
            k += 6
        else:
            raise ValueError(f"unknown escape '\\{e}' in a string")
    return "".join(out)


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


class _ToAST(Transformer_NonRecursive):
    """Lark tree -> ast dataclasses (one method per rule or alias); iterative, so that a deep
    tree reaches the nesting check (:func:`_check_nesting`) instead of Python's stack limit."""

    def __init__(self, filename: str, source: str):
        super().__init__()
        self.filename = filename
        self.source = source

    def _loc(self, meta) -> Location:
        return Location(self.filename, getattr(meta, "line", 1), getattr(meta, "column", 1))

    def _tok(self, tok: Token) -> Location:
        return token_location(self.filename, tok)

    def _error(self, message: str, loc: Location) -> SchedSyntaxError:
        return located(SchedSyntaxError, message, loc, self.source)

    # ------------------------------------------------ top level

    def start(self, items):
        return list(items)

    @v_args(meta=True)
    def use(self, meta, children):
        return ast.Use(self._loc(meta), self._string(children[0]))

    @v_args(meta=True)
    def workload(self, meta, children):
        name, params, *items = children
        return ast.WorkloadDef(self._loc(meta), str(name), params or (), tuple(items))

    @v_args(meta=True)
    def input(self, meta, children):
        name, dtype, shape = children
        return ast.InputDecl(self._loc(meta), str(name), str(dtype), shape)

    @v_args(meta=True)
    def stage(self, meta, children):
        name, axes, dtype, shape, value, over = children
        return ast.StageDecl(self._loc(meta), str(name), axes or (),
                             None if dtype is None else str(dtype), shape, value, over or ())

    @v_args(meta=True)
    def require(self, meta, children):
        # The rule's text runs to the end of its line's comment; conditions hold no strings.
        text = re.sub(r"#[^\n]*", "", self.source[meta.start_pos:meta.end_pos])
        text = " ".join(text.replace("\\\n", " ").split()).removeprefix("require ")
        return ast.Require(self._loc(meta), children[0], text)

    def shape(self, children):
        return children[0] or ()

    def over(self, children):
        return tuple(children)

    @v_args(meta=True)
    def over_axis(self, meta, children):
        name, _, extent = children
        return ast.OverAxis(self._loc(meta), str(name), extent)

    @v_args(meta=True)
    def space(self, meta, children):
        name, workload, body = children
        return ast.SpaceDef(self._loc(meta), str(name),
                            None if workload is None else str(workload), body)

    @v_args(meta=True)
    def rule(self, meta, children):
        name, params, body = children
        return ast.RuleDef(self._loc(meta), str(name), params or (), body)

    def params(self, children: list[ast.Param]) -> tuple[ast.Param, ...]:
        seen: set[str] = set()
        required_after_default = False
        for p in children:
            if p.name in seen:
                raise self._error(f"parameter '{p.name}' given twice", p.loc)
            seen.add(p.name)
            if p.default is None and required_after_default:
                raise self._error(
                    f"parameter '{p.name}' without a default follows one with a default", p.loc)
            required_after_default = required_after_default or p.default is not None
        return tuple(children)

    @v_args(meta=True)
    def param(self, meta, children):
        name, default = children
        return ast.Param(self._loc(meta), str(name), default)

    # ------------------------------------------------ statements

    def body(self, children):
        return tuple(children)

    @v_args(meta=True)
    def assign(self, meta, children):
        return ast.Assign(self._loc(meta), children[0], children[1])

    @v_args(meta=True)
    def expr_stmt(self, meta, children):
        return ast.ExprStmt(self._loc(meta), children[0])

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return ast.Return(self._loc(meta), children[0] or ())

    @v_args(meta=True)
    def pass_stmt(self, meta, children):
        return ast.Pass(self._loc(meta))

    @v_args(meta=True)
    def if_stmt(self, meta, children):
        cond, body, *rest = children
        orelse = rest.pop() or ()
        return ast.If(self._loc(meta), ((cond, body), *rest), orelse)

    def elif_clause(self, children):
        return (children[0], children[1])

    def else_clause(self, children):
        return children[0]

    @v_args(meta=True)
    def for_stmt(self, meta, children):
        target, it, body = children
        return ast.For(self._loc(meta), str(target), it, body)

    def names(self, children):
        return tuple(str(c) for c in children)

    # ------------------------------------------------ expressions

    @v_args(meta=True)
    def boolop(self, meta, children):
        a, op, b = children
        return ast.BoolOp(self._loc(meta), str(op), a, b)

    @v_args(meta=True)
    def compare(self, meta, children):
        a, op, b = children
        return ast.Compare(self._loc(meta), str(op), a, b)

    @v_args(meta=True)
    def binop(self, meta, children):
        a, op, b = children
        return ast.BinOp(self._loc(meta), str(op), a, b)

    @v_args(meta=True)
    def unaryop(self, meta, children):
        op, x = children
        return ast.UnaryOp(self._loc(meta), str(op), x)

    @v_args(meta=True)
    def index(self, meta, children):
        return ast.Index(self._loc(meta), children[0], children[1] or ())

    def name(self, children):
        tok = children[0]
        return ast.Name(self._tok(tok), str(tok))

    def int_lit(self, children):
        tok = children[0]
        if len(tok) > 100:
            raise self._error("integer literal too long", self._tok(tok))
        return ast.Const(self._tok(tok), int(tok))

    def float_lit(self, children):
        tok = children[0]
        return ast.Const(self._tok(tok), float(tok))

    def string_lit(self, children):
        return ast.Const(self._tok(children[0]), self._string(children[0]))

    def _string(self, tok: Token) -> str:
        try:
            return _unescape(str(tok))
        except ValueError as exc:
            raise self._error(str(exc), self._tok(tok)) from None

    @v_args(meta=True)
    def true_lit(self, meta, children):
        return ast.Const(self._loc(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta, children):
        return ast.Const(self._loc(meta), False)

    @v_args(meta=True)
    def none_lit(self, meta, children):
        return ast.Const(self._loc(meta), None)

    @v_args(meta=True)
    def list_expr(self, meta, children):
        return ast.ListExpr(self._loc(meta), children[0] or ())

    @v_args(meta=True)
    def call(self, meta, children):
        func, args = children
        positional, keywords = [], []
        for a in args or ():
            if isinstance(a, tuple):
                if any(k == a[0] for k, _ in keywords):
                    raise self._error(f"keyword argument '{a[0]}' given twice", a[2])
                keywords.append(a[:2])
            elif keywords:
                raise self._error("positional argument after a keyword argument", a.loc)
            else:
                positional.append(a)
        return ast.Call(self._loc(meta), str(func), tuple(positional), tuple(keywords))

    def exprs(self, children):
        return tuple(c for c in children if c is not None)

    def args(self, children):
        return [c for c in children if c is not None]

    def kwarg(self, children):
        name, value = children
        return (str(name), value, self._tok(name))


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse .sched ``text``; syntax errors raise :class:`SchedSyntaxError` located in
    ``filename``. The tree is immutable, so the last texts parsed are remembered: parsing one
    again (a space re-run by search, a file loaded again) costs a dictionary lookup. A text
    longer than a file may be (:data:`~probsched.lang.limits.MAX_FILE_BYTES` characters) is
    refused."""
    if len(text) > MAX_FILE_BYTES:
        raise SchedSyntaxError(f"the text is longer than {MAX_FILE_BYTES // 2**20} MB (the limit "
                               "of a .sched file)", Location(filename, 1, 1))
    return _parse(text, filename)


@functools.lru_cache(maxsize=256)
def _parse(text: str, filename: str) -> ast.Module:
    parser, indenter = _lark()
    text = strip_bom(text)
    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = parser.parse(source)
    except PostlexError as exc:
        raise located(SchedSyntaxError, exc.message,
                      Location(filename, exc.line, exc.column), source) from None
    except UnexpectedInput as exc:
        raise syntax_error(exc, parser, source, filename, list(indenter.open_brackets)) from None
    try:
        items = _ToAST(filename, source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ProbschedError):
            raise exc.orig_exc from None
        raise
    for item in items:
        _check_nesting(item, source)
    return ast.Module(filename, tuple(items), source)


def _check_nesting(item: ast.Item, source: str) -> None:
    """Refuse a definition nested more than :data:`MAX_NESTING` deep (located where it first
    is): what runs it afterwards (the checker, the interpreter, a workload's passes) recurses
    on it."""
    depth, beyond = ast.nesting(item, MAX_NESTING)
    if beyond is not None:
        raise located(
            SchedSyntaxError,
            f"nested {depth} deep, more than {MAX_NESTING} (the limit): blocks, calls, "
            "indexing, list brackets and operators each count a level (a + b + c counts "
            "two); give parts of it names of their own", beyond, source)
