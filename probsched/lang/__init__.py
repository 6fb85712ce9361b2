"""The .sched language: parser (text -> AST), workload builder, interpreter (spaces run on a
Schedule, random choices addressed), the static checker, spaces (``@space``), modules and the
loader (``load``/``parse``, the shipped rule libraries) and the trace printer. The grammar is
``grammar/sched.lark`` at the repository's top (read by :func:`.grammar.grammar_text`);
docs/language.md describes it."""

from .errors import SchedError
from .loader import generated_space, library, library_path, load, parse
from .module import Module
from .space import PythonSpace, SchedSpace, Space, space
from .trace_printer import format_trace_space

__all__ = [
    "Module", "PythonSpace", "SchedError", "SchedSpace", "Space", "format_trace_space",
    "generated_space", "library", "library_path", "load", "parse", "space",
]
