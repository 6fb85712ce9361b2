"""Spaces: programs that transform a schedule, with random choices. Two kinds, one interface:
``space`` blocks of `.sched` files (:class:`SchedSpace`, run by the interpreter) and Python
functions decorated with :func:`space` (:class:`PythonSpace`).

>>> import probsched as ps
>>> @ps.space
... def halves(sch):
...     i = sch.get_loops(sch.get_block("C"))[1]
...     sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=4))
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=16, m=16, k=16), seed=0)
>>> made = halves.apply(sch)
>>> list(made)
['#0']
>>> again = ps.Schedule(sch.workload, seed=7)
>>> halves.apply(again, made) == made and again.trace == sch.trace
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import Location
from ..schedule import Schedule
from ..schedule.trace import Decisions
from . import ast
from .errors import SchedError, located
from .interpreter import Code, Interpreter

if TYPE_CHECKING:
    from .module import Module


class Space:
    """A space: run it on a schedule with :meth:`apply`."""

    name: str
    workload_name: str | None

    def apply(self, sch: Schedule, decisions: Mapping[str, Any] | None = None) -> Decisions:
        """Run the space on ``sch`` (recording into its trace). Sampling calls whose address
        is in ``decisions`` use that decision, the others sample from ``sch``'s generator.
        Returns the decisions made, by address, in the order they were made."""
        before = len(sch.trace.decisions)
        previous = sch.decisions
        if decisions is not None:
            sch.decisions = decisions
        try:
            self._run(sch)
        finally:
            sch.decisions = previous
        return dict(sch.trace.decisions[before:])

    def _run(self, sch: Schedule) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        bound = f" for {self.workload_name}" if self.workload_name else ""
        return f"<{type(self).__name__} {self.name}{bound}>"


class SchedSpace(Space):
    """A ``space`` block; addresses are call sites plus the dynamic path (see interpreter)."""

    def __init__(self, code: Code[ast.SpaceDef], module: Module):
        self.code = code
        self.module = module
        self.name = code.name
        self.workload_name = code.node.workload

    @property
    def location(self) -> Location:
        return self.code.node.loc

    def _run(self, sch: Schedule) -> None:
        if self.workload_name is not None and sch.workload.name != self.workload_name:
            raise located(SchedError, f"space {self.name} is for workload {self.workload_name}, "
                          f"not {sch.workload.name}", self.location, self.code.source)
        try:
            Interpreter(sch, self.module.rules).run_space(self.code)
        except RecursionError:  # the limits keep runs well within Python's stack; a safety net
            raise located(SchedError, f"space {self.name} nests too deeply for Python's stack "
                          "(see the nesting limits in docs/language.md)", self.location,
                          self.code.source) from None


class PythonSpace(Space):
    """A Python function ``f(sch)`` as a space; a sampling call's address is its order in the
    schedule (``#0``, ``#1``, ...), since it has no source location."""

    def __init__(self, fn: Callable[[Schedule], Any], name: str | None = None,
                 workload: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.workload_name = workload
        functools.update_wrapper(self, fn)

    def __call__(self, sch: Schedule) -> Any:
        return self.fn(sch)

    def _run(self, sch: Schedule) -> None:
        self.fn(sch)


def space(fn: Callable | None = None, *, name: str | None = None,
          workload: str | None = None):
    """Make a Python function ``f(sch)`` a :class:`Space`: ``@ps.space`` or
    ``@ps.space(workload="gmm")``."""
    if fn is None:
        return lambda f: PythonSpace(f, name, workload)
    return PythonSpace(fn, name, workload)
