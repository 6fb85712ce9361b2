"""The limits of the .sched language, in one place (docs/language.md, "Limits", states them).

Each one bounds what a hostile or mistaken file can make the tool do (time, memory, Python's
stack), and each is reported as a located error that names it. They are far beyond what a
hand-written space, rule library or workload needs: the generated space
(``probsched/rules/cpu.sched``, whose rules nest at most 7 deep) runs at most 684 statements,
nests 29 levels across its rule calls and spends at most 22,114 of the program work on the
suite's operators at their benchmark shapes.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ProbschedError

# ---------------------------------------------------------------- files

MAX_FILE_BYTES = 2**20
"""A file that ``load`` or ``use`` reads (read with this bound: ``/dev/zero`` costs nothing).
Lark parses some 50,000 tokens a second, so a megabyte of .sched (some 250,000 tokens) already
takes seconds; the largest file probsched ships, ``cpu.sched``, is 13 KB."""

MAX_USE_DEPTH = 32
"""Files in a chain of ``use``s (a uses b uses c ...)."""

# ---------------------------------------------------------------- syntax

MAX_FILE_TOKENS = 100_000
"""Tokens of one file. Lark's LALR parser, with the tree it builds, handles some 10,000 to
20,000 tokens a second on these machines, so this bounds a parse to seconds (the largest
file probsched ships, ``cpu.sched``, has about 4,000)."""

MAX_STATEMENT_TOKENS = 20_000
"""Tokens of one logical line (a statement, or a stage with its brackets spanning lines): a
line of a megabyte stops here instead of being parsed to the end."""

MAX_NESTING = 100
"""Blocks (``if``, ``for``) and expressions (operators, calls, indexing, list brackets)
nested in one another in one definition; a chain ``a + b + c`` nests one level per
operator. Parentheses alone do not nest. Square brackets (lists, indexing) are also counted
as they are lexed, so that a file of deep brackets stops at the first one too deep instead of
being parsed to its end."""

# ---------------------------------------------------------------- running a space

MAX_STEPS = 100_000
"""Statements one run of a space executes."""

MAX_ITEM_WORK = 1_000_000
"""List items and string characters one run builds (``range``, list literals, ``+``) or
compares (``==`` of lists), in all."""

MAX_ITEMS = 100_000
"""Items of one list or characters of one string that a space builds."""

MAX_PROGRAM_WORK = 1_000_000
"""Loops and blocks that the primitives and queries of one run go over, in all: each call
counts the program's size when it is made (what it looks through), plus
:data:`CALL_WORK`."""

CALL_WORK = 20
"""What a primitive or query counts beyond the program's size: its fixed cost (a new program,
a trace entry; some 60 us) in loops and blocks' worth, so that a loop of cheap calls on a tiny
program (90,000 annotates took 6 s) stops within seconds too."""

MAX_CALL_DEPTH = 64
"""Rule calls nested in one another (endless recursion stops here)."""

MAX_RUN_NESTING = 200
"""Levels of nesting across the rule calls active at once: the space's nesting, and for each
call 2 more than its rule's (the call and the body). With the other limits, what Python's
stack can hold."""

MAX_INT_DIGITS = 100
"""Decimal digits of an integer, written or computed."""


def read_text(path: Path, what: str = "the file") -> str:
    """The UTF-8 text of ``path``, read with the bound :data:`MAX_FILE_BYTES`; a byte-order
    mark at its start is dropped. ``OSError`` (and ``UnicodeDecodeError``) pass through; a file
    too large raises :class:`~probsched.errors.ProbschedError`."""
    # Opened without blocking (a FIFO nobody writes to would wait forever), then read normally.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ProbschedError(f"{what} is longer than {MAX_FILE_BYTES // 2**20} MB "
                             "(the limit of a .sched file)")
    return strip_bom(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"))


def strip_bom(text: str) -> str:
    """``text`` without a leading UTF-8 byte-order mark (editors on Windows write one)."""
    return text[1:] if text.startswith("\ufeff") else text
