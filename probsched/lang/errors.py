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


def context(source: str, loc: Location) -> str:
    """The source line of ``loc`` and a caret under its column ('' if out of range)."""
    lines = source.splitlines()
    if not (1 <= loc.line <= len(lines)):
        return ""
    line = lines[loc.line - 1].rstrip()
    pad = "".join("\t" if c == "\t" else " " for c in line[: max(loc.column - 1, 0)])
    return f"    {line}\n    {pad}^"


def located(cls: type[ProbschedError], message: str, loc: Location, source: str = ""):
    """``cls(message, loc)`` with the source context appended to the message."""
    ctx = context(source, loc) if source else ""
    return cls(f"{message}\n{ctx}" if ctx else message, loc)


def did_you_mean(message: str, name: str, known: Iterable[str]) -> str:
    """``message``, and the closest of ``known`` to ``name`` if one is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"{message}; did you mean '{close[0]}'?" if close else message
