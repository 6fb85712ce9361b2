"""Syntax error messages: ``FILE:LINE:COL: error: message``, the source line and a caret.

The message is a friendly label when the failure happens in the same parser state as one of
the known-bad snippets of :data:`CATALOGUE` (Lark's ``match_examples``); an unclosed bracket is
reported at the bracket; otherwise the message names the unexpected token and what was
expected.
"""

from __future__ import annotations

import functools

import lark
from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import Location, SchedSyntaxError
from .errors import located


class PostlexError(LarkError):
    """What the postlexer finds wrong: a line dedenting to a level no enclosing block has, a
    keyword where a name goes (Lark's contextual lexer would take it for a name)."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


# Known-bad snippets and the label their failure gets (the first matching state wins).
CATALOGUE: dict[str, list[str]] = {
    "missing ':'": [
        "space s\n    pass\n",
        "space s for w\n    pass\n",
        "def f(a)\n    pass\n",
        "def f()\n    pass\n",
        "workload w(n = 1)\n    input A: float32[n]\n",
        "workload w()\n    input A: float32[4]\n",
        "space s:\n    if x\n        pass\n",
        "space s:\n    if x > 1\n        pass\n",
        "space s:\n    if x:\n        pass\n    elif y\n        pass\n",
        "space s:\n    if x:\n        pass\n    else\n        pass\n",
        "space s:\n    for x in y\n        pass\n",
        "workload w():\n    input A float32[4]\n",
    ],
    "'=' assigns; compare with '=='": [
        "space s:\n    if x = 1:\n        pass\n",
        "space s:\n    if x:\n        pass\n    elif x = 1:\n        pass\n",
        "space s:\n    if x[0] = 1:\n        pass\n",
        "space s:\n    if f(x) = 1:\n        pass\n",
        "space s:\n    if x + 1 = 1:\n        pass\n",
        "space s:\n    x = y = 1\n",
    ],
    "unknown dtype; expected float32, float64, int32 or int64": [
        "workload w():\n    input A: float33[4]\n",
        "workload w():\n    input A: float[4]\n",
        "workload w():\n    C[i]: double[4] = 1.0\n",
    ],
    "unexpected indentation (only an 'over' clause continues a stage on the next line)": [
        "workload w():\n    C[i] = 1.0\n        D[i] = 2.0\n",
    ],
    "unexpected indentation": [
        "space s:\n    x = 1\n        y = 2\n",
        "use \"a\"\n    use \"b\"\n",
        "workload w():\n    input A: float32[4]\n        input B: float32[4]\n",
    ],
    "expected an indented block": [
        "space s:\npass\n",
        "def f():\nreturn 1\n",
        "space s:\n    if x:\n    pass\n",
        "workload w():\ninput A: float32[4]\n",
    ],
    "statements belong inside a space or a def": [
        "x = 1\n",
        "split(x)\n",
        "if x:\n    pass\n",
        "for x in y:\n    pass\n",
        "return 1\n",
    ],
    "missing ',' between items": [
        "space s:\n    f(a b)\n",
        "space s:\n    f(1 2)\n",
        "space s:\n    x = [a b]\n",
        "space s:\n    x = [1 2]\n",
    ],
    "a stage's left side lists axis names, e.g. C[i, j] = ...": [
        "workload w():\n    C[i + 1] = 1.0\n",
        "workload w():\n    C[0] = 1.0\n",
    ],
    "a reduction axis is given as 'over r < extent'": [
        "workload w():\n    C[i] = sum(A[i, r]) over r = 3\n",
        "workload w():\n    C[i] = sum(A[i, r]) over r in 3\n",
    ],
    "a space or def needs a name": [
        "space:\n    pass\n",
        "def (a):\n    pass\n",
    ],
}

_TOKEN_NAMES = {
    "_NL": "end of line", "_INDENT": "indentation", "_DEDENT": "end of block",
    "$END": "end of file", "NAME": "a name", "INT": "an integer", "FLOAT": "a number",
    "STRING": "a string", "DTYPE": "a dtype",
}


def _describe_token(tok: Token) -> str:
    if tok.type in ("_NL", "_INDENT", "_DEDENT", "$END"):
        return _TOKEN_NAMES[tok.type]
    return repr(str(tok))


def _describe_expected(parser: lark.Lark, names) -> str:
    shown = []
    for n in sorted(names):
        if n in _TOKEN_NAMES:
            shown.append(_TOKEN_NAMES[n])
            continue
        try:
            pattern = parser.get_terminal(n).pattern
        except KeyError:
            continue
        shown.append(f"'{pattern.value}'" if pattern.type == "str" else n.lower())
    return ", ".join(shown)


def token_location(filename: str, tok: Token) -> Location:
    """Where ``tok`` starts (the lexer places every token it makes)."""
    assert tok.line is not None and tok.column is not None
    return Location(filename, tok.line, tok.column)


def _try_parse(parser: lark.Lark, text: str) -> None:
    """Parse a catalogue snippet for ``match_examples``; its error's state is reduced to the
    LALR state number (see :func:`_label`)."""
    try:
        parser.parse(text)
    except PostlexError:
        pass
    except UnexpectedInput as exc:
        exc.state = getattr(exc.state, "position", exc.state)
        raise


def _label(exc: UnexpectedInput, parser: lark.Lark) -> str | None:
    """The catalogue label of ``exc``. Lark's interactive parser state compares equal only at
    the same stack depth (and fails to log a mismatch of accepts); errors in the same LALR
    state are what we mean, whatever the nesting, so both sides compare state numbers."""
    exc.state = getattr(exc.state, "position", exc.state)
    # Lark annotates parse_fn as returning a Tree but only calls it for its errors.
    return exc.match_examples(functools.partial(_try_parse, parser),  # type: ignore[arg-type]
                              CATALOGUE, use_accepts=True)


def syntax_error(exc: UnexpectedInput, parser: lark.Lark, text: str, filename: str,
                 brackets: list[Token]) -> SchedSyntaxError:
    """The located error for Lark's ``exc`` on ``text``; ``brackets`` are the brackets still
    open when it happened."""
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        line, column = exc.token.end_line or line, exc.token.end_column or column
    if line is None or line < 1:
        line, column = max(text.count("\n"), 1), 1
    loc = Location(filename, line, column)
    opened = token_location(filename, brackets[-1]) if brackets else None
    if opened is not None and opened.line < line:
        message = f"'{brackets[-1]}' at line {opened.line}, column {opened.column} is never closed"
        return located(SchedSyntaxError, message, opened, text)
    if isinstance(exc, UnexpectedCharacters):
        ch = exc.char  # the character at exc.pos_in_stream
        if ch in "\"'":
            message = "unterminated string"
        else:
            message = _label(exc, parser) or f"unexpected character {ch!r}"
        return located(SchedSyntaxError, message, loc, text)
    label = _label(exc, parser)
    if label is None and isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "_INDENT":
            label = "unexpected indentation"
        elif exc.expected == {"_INDENT"}:
            label = "expected an indented block"
        else:
            expected = _describe_expected(parser, exc.accepts or exc.expected)
            label = f"unexpected {_describe_token(tok)}"
            if expected and len(exc.accepts or exc.expected) <= 8:
                label += f"; expected {expected}"
    return located(SchedSyntaxError, label or "invalid syntax", loc, text)
