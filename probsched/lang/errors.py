"""Located errors of the .sched language.

:class:`SchedError` is the semantic error (an unknown name, wrong arity, a bad argument, a
`use` cycle); syntax errors are :class:`~probsched.errors.SchedSyntaxError`. Both print as
``FILE:LINE:COL: error: message`` followed by the source line and a caret under the column.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import Location, ProbschedError


class SchedError(ProbschedError):
    """A .sched file is well-formed but wrong: unknown name, wrong arity, bad argument type,
    a rule or space failing when run, a `use` that cannot be resolved."""


CONTEXT_WIDTH = 100  # characters of a long source line shown around the caret


def context(source: str, loc: Location) -> str:
    """The source line of ``loc`` and a caret under its column ('' if out of range); of a line
    longer than :data:`CONTEXT_WIDTH`, the part around the column, cut ends marked ``...``."""
    start = 0
    for _ in range(loc.line - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return ""
    end = source.find("\n", start)
    line = source[start:] if end < 0 else source[start:end]
    if loc.line < 1 or (end < 0 and not line):
        return ""
    line, col = line.rstrip(), max(loc.column - 1, 0)
    if len(line) > CONTEXT_WIDTH:
        lo = max(0, min(col - CONTEXT_WIDTH // 2, len(line) - CONTEXT_WIDTH))
        head, tail = ("..." if lo > 0 else ""), ("..." if lo + CONTEXT_WIDTH < len(line) else "")
        line, col = head + line[lo:lo + CONTEXT_WIDTH] + tail, col - lo + len(head)
    pad = "".join("\t" if c == "\t" else " " for c in line[:col])
    return f"    {line}\n    {pad}^"


def located(cls: type[ProbschedError], message: str, loc: Location, source: str = ""):
    """``cls(message, loc)`` with the source context appended to the message."""
    ctx = context(source, loc) if source else ""
    return cls(f"{message}\n{ctx}" if ctx else message, loc)


def did_you_mean(message: str, name: str, known: Iterable[str]) -> str:
    """``message``, and the closest of ``known`` to ``name`` if one is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message
