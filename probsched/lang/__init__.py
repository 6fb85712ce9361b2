"""The .sched language: parser (text -> AST), workload builder, interpreter (spaces run on a
Schedule, random choices addressed), modules (``load``/``parse``, ``@space``) and the trace
printer. The grammar is ``grammar/sched.lark`` at the repository's top (read by
:func:`probsched.lang.grammar.grammar_text`); docs/language.md describes it."""

from .errors import SchedError
from .module import Module, PythonSpace, SchedSpace, Space, load, parse, space
from .trace_printer import format_trace_space

__all__ = [
    "Module", "PythonSpace", "SchedError", "SchedSpace", "Space", "format_trace_space", "load",
    "parse", "space",
]
