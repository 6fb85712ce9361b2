"""The one registry of what a schedule can do: every instruction and every query, declared once.

A declaration carries the name, the Python signature, the kind of each argument, what it
returns, whether it is pure (no effect on the program) or sampling (draws a decision), and a
doc line. Everything else is derived from it: the `.sched` interpreter's primitives and query
builtins, the static checker's arities, the trace features' instruction kinds, trace printing
and simplification, ``Schedule.legal`` and the query table of docs/language.md
(:func:`query_table`; a test keeps the doc equal to it).

Extending: a new primitive is a Schedule method with ``@instruction("loop int")`` (its
argument kinds in order), a new query one with ``@query("block")``.

>>> from probsched.schedule import INSTRUCTIONS, QUERIES
>>> INSTRUCTIONS["split"].args, INSTRUCTIONS["split"].returns
(('loop', 'factors'), 'loops')
>>> QUERIES["loop_extent"].doc
'The extent of a loop (its iteration count).'
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ARG_KINDS = {
    "block": "a block",
    "loop": "a loop",
    "int": "an integer (or a sampled value)",
    "ints": "a list of integers",
    "factors": "a list of integers, sampled values or one None",
    "probs": "a list of numbers",
    "str": "a name or text",
    "buffer": "a buffer name or the index of a read buffer",
    "value": "a number, text or sampled value",
    "prim": "a primitive's name",
    "any": "arguments of the primitive named first",
}
RETURN_KINDS = ("none", "block", "blocks", "loop", "loops", "value", "values", "bool", "int",
                "ints", "str", "strs")


@dataclass(frozen=True)
class Declaration:
    """What an instruction or query is: name, signature (``self`` left out), argument kinds
    in order, what it returns, and its doc line."""

    name: str
    signature: inspect.Signature = field(repr=False, compare=False)
    args: tuple[str, ...]
    returns: str
    doc: str

    @functools.cached_property
    def variadic(self) -> bool:
        """Takes ``*args`` (``fuse``, ``reorder``): one list given is spread (asked at every
        primitive call, so worked out once)."""
        return any(p.kind == p.VAR_POSITIONAL for p in self.signature.parameters.values())

    @functools.cached_property
    def arity(self) -> tuple[int, float]:
        """The fewest and the most positional arguments it takes (``inf``: any number)."""
        params = [p for p in self.signature.parameters.values() if p.name != "decision"]
        most = math.inf if any(p.kind == p.VAR_POSITIONAL for p in params) else len(params)
        least = sum(p.default is p.empty and p.kind != p.VAR_POSITIONAL for p in params)
        return least, most

    def usage(self) -> str:
        """The call as documented: ``loop_extent(loop)``, ``legal(prim, args...)``."""
        parts = []
        for p in self.signature.parameters.values():
            if p.name == "decision":
                continue
            if p.kind == p.VAR_POSITIONAL:
                parts.append(f"{p.name}...")
            elif p.default is not p.empty:
                parts.append(f"{p.name}={p.default!r}".replace("'", '"'))
            else:
                parts.append(p.name)
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class InstructionKind(Declaration):
    """An instruction: recorded in traces, replayed by calling the Schedule method of its
    name. ``pure``: changes nothing of the program (a lookup, or a sampling)."""

    pure: bool = False
    sampling: bool = False

    @property
    def returns_list(self) -> bool:
        """A list of RVs (so one output prints as ``x = kind(...)[0]``)."""
        return self.returns in ("blocks", "loops", "values")


@dataclass(frozen=True)
class QueryKind(Declaration):
    """A query: a deterministic function of the program or the target, returning a plain
    value; never recorded (a replay asks it again and gets the same answer)."""


INSTRUCTIONS: dict[str, InstructionKind] = {}
QUERIES: dict[str, QueryKind] = {}


def _declare(fn: Callable, args: str, returns: str) -> tuple[str, inspect.Signature,
                                                             tuple[str, ...], str]:
    name = fn.__name__
    params = list(inspect.signature(fn).parameters.values())[1:]  # self left out
    signature = inspect.Signature(params)
    kinds = tuple(args.split())
    named = [p.name for p in params if p.name != "decision"]
    unknown = [k for k in kinds if k not in ARG_KINDS]
    if len(kinds) != len(named) or unknown or returns not in RETURN_KINDS:
        raise TypeError(f"declaration of {name}: argument kinds {kinds} for parameters "
                        f"{named}; returns {returns!r} (kinds: {', '.join(ARG_KINDS)}; "
                        f"returns: {', '.join(RETURN_KINDS)})")
    return name, signature, kinds, doc_line(fn)


def instruction(args: str = "", *, returns: str = "none", pure: bool = False,
                sampling: bool = False) -> Callable:
    """Declare a Schedule method as an instruction; ``args``: the kinds of its parameters in
    order (``decision`` of a sampling instruction left out)."""

    def register(method: Callable) -> Callable:
        name, signature, kinds, doc = _declare(method, args, returns)
        INSTRUCTIONS[name] = InstructionKind(name, signature, kinds, returns, doc,
                                             pure or sampling, sampling)
        return method

    return register


def query(args: str = "", *, returns: str) -> Callable:
    """Declare a Schedule method as a query (a `.sched` builtin of the same name)."""

    def register(method: Callable) -> Callable:
        name, signature, kinds, doc = _declare(method, args, returns)
        QUERIES[name] = QueryKind(name, signature, kinds, returns, doc)
        return method

    return register


def doc_line(fn: Callable) -> str:
    """The first sentence of ``fn``'s docstring, on one line."""
    text = " ".join((inspect.getdoc(fn) or "").split("\n\n", 1)[0].split())
    match = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    return text[: match.start() + 1] if match else text


def trace_kinds() -> tuple[str, ...]:
    """The instructions that change a program or draw a decision, sorted by name: the kinds
    trace features encode (lookups only use positions up)."""
    return tuple(sorted(k for k, v in INSTRUCTIONS.items() if not v.pure or v.sampling))


def query_table() -> str:
    """The Markdown table of every query, as docs/language.md shows it."""
    lines = ["| query | value |", "| --- | --- |"]
    for q in QUERIES.values():
        lines.append(f"| `{q.usage()}` | {_markdown(q.doc)} |")
    return "\n".join(lines)


def instruction_table() -> str:
    """The Markdown table of every instruction, as docs/language.md shows it."""
    lines = ["| primitive | arguments | gives | what it does |", "| --- | --- | --- | --- |"]
    for k in sorted(INSTRUCTIONS.values(), key=lambda k: (k.sampling, k.pure, k.name)):
        args = ", ".join(ARG_KINDS[a].split(" (")[0] for a in k.args) or "-"
        gives = "-" if k.returns == "none" else k.returns
        tags = " (sampling)" if k.sampling else " (lookup)" if k.pure else ""
        lines.append(f"| `{k.usage()}`{tags} | {args} | {gives} | {_markdown(k.doc)} |")
    return "\n".join(lines)


def _markdown(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|")


# The class whose methods implement the instructions (Schedule), so that a trace, which is
# plain data, can be replayed onto a fresh one without importing it.
_implementation: list[type] = []


def implemented_by(cls: type) -> type:
    """Mark ``cls`` as the class implementing the instructions (done once, by Schedule)."""
    missing = [name for name in (*INSTRUCTIONS, *QUERIES) if not hasattr(cls, name)]
    if missing:
        raise TypeError(f"{cls.__name__} lacks declared methods {missing}")
    _implementation[:] = [cls]
    return cls


def new_schedule(workload: Any, **options: Any) -> Any:
    """A fresh schedule of ``workload`` (``options``: seed, target, decisions)."""
    if not _implementation:
        raise RuntimeError("probsched.schedule.schedule is not imported")
    return _implementation[0](workload, **options)
