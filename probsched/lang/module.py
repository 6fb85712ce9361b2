"""A loaded .sched file: its workloads, spaces and rules (its own and those of the files it
``use``\\s). :mod:`.loader` makes modules; :mod:`.space` runs their spaces.

>>> import probsched as ps
>>> mod = ps.parse('''
... workload add(n = 8):
...     input A: float32[n]
...     B[i] = A[i] + 1.0
...
... space halves for add:
...     i = get_loops(get_block("B"))[0]
...     t = sample_perfect_tile(i, n=2, max_innermost_factor=4)
...     split(i, t)
... ''')
>>> wl = mod.workload(n=16)
>>> sch = ps.Schedule(wl, seed=0)
>>> decisions = mod.space().apply(sch)
>>> list(decisions)
['<string>:8:9']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Location, ProbschedError
from ..ir.compute import Workload
from ..schedule import INSTRUCTIONS, Schedule
from . import ast
from .builtins import BUILTINS
from .checker import check_code
from .errors import SchedError, located
from .interpreter import Code
from .space import SchedSpace, Space
from .workload_builder import build_workload


class Module:
    """A loaded .sched file: ``.workloads`` and ``.spaces`` by name, ``.rules`` (its own and
    those of the files it ``use``\\ s). ``fallback_space`` gives the space of a file that
    has none (the loader passes the generated space)."""

    def __init__(self, tree: ast.Module, unit: str, libraries: list[tuple[ast.Use, Module]],
                 *, fallback_space: Callable[[], Space] | None = None):
        self.filename = tree.filename
        self._fallback_space = fallback_space
        self.ast = tree
        self.unit = unit
        self._workload_defs: dict[str, ast.WorkloadDef] = {}
        self.rules: dict[str, Code[ast.RuleDef]] = {}
        self.spaces: dict[str, Space] = {}
        for item in tree.items:
            if isinstance(item, ast.WorkloadDef):
                self._unique(item, self._workload_defs, "workload")
                self._workload_defs[item.name] = item
            elif isinstance(item, ast.RuleDef):
                self._unique(item, self.rules, "rule")
                if item.name in BUILTINS or item.name in INSTRUCTIONS:
                    raise self._error(f"rule {item.name} would hide the "
                                      f"{'builtin' if item.name in BUILTINS else 'primitive'} "
                                      f"of that name", item.loc)
                self.rules[item.name] = Code(item, tree.source, unit)
        for use, lib in libraries:
            for name, code in lib.rules.items():
                if self.rules.setdefault(name, code) is not code:
                    other = self.rules[name].node.loc
                    raise self._error(f"rule {name} from {use.path} clashes with the rule "
                                      f"{name} at {other}", use.loc)
        space_codes: list[Code[ast.SpaceDef]] = []
        for item in tree.of_type(ast.SpaceDef):
            self._unique(item, self.spaces, "space")
            if (item.workload is not None and self._workload_defs
                    and item.workload not in self._workload_defs):
                raise self._error(f"space {item.name} is for an unknown workload "
                                  f"{item.workload}; workloads here: "
                                  f"{', '.join(self._workload_defs)}", item.loc)
            space_codes.append(Code(item, tree.source, unit))
            self.spaces[item.name] = SchedSpace(space_codes[-1], self)
        own: list[Code] = [*self.rules.values(), *space_codes]
        for c in own:
            if c.unit == unit:
                check_code(c, self.rules)

    def _error(self, message: str, loc: Location) -> ProbschedError:
        return located(SchedError, message, loc, self.ast.source)

    def _unique(self, item, seen: Mapping[str, Any], what: str) -> None:
        if item.name in seen:
            raise self._error(f"{what} {item.name} is defined twice", item.loc)

    # ------------------------------------------------ access

    @property
    def workloads(self) -> dict[str, Workload]:
        """Every workload, built with its default parameters."""
        return {name: self.workload(name) for name in self._workload_defs}

    @property
    def workload_names(self) -> list[str]:
        return list(self._workload_defs)

    def workload(self, name: str | None = None, /, **params: int) -> Workload:
        """The workload ``name`` (the only one when None), parameters overridden by
        ``params``: ``mod.workload("gmm", n=64, m=64, k=64)``."""
        return build_workload(self.workload_def(name), self.ast.source, params)

    def workload_def(self, name: str | None = None) -> ast.WorkloadDef:
        """The definition of workload ``name`` (the only one when None), as parsed."""
        return self._workload_defs[_pick(name, list(self._workload_defs), "workload",
                                         self.filename)]

    def space(self, name: str | None = None) -> Space:
        """The space ``name`` (the only one when None; the generated space of
        ``probsched/rules/cpu.sched`` when None and the file has no space)."""
        if name is None and not self.spaces and self._fallback_space is not None:
            return _Generated(self._fallback_space(), self)
        return self.spaces[_pick(name, list(self.spaces), "space", self.filename)]

    def spaces_for(self, workload: str) -> list[Space]:
        """The spaces bound to ``workload`` and those for any workload."""
        return [s for s in self.spaces.values() if s.workload_name in (None, workload)]

    def space_for(self, workload: str) -> Space:
        """The one space for ``workload``; the generated space when the file has none for it
        (an error when it has several: name one)."""
        fits = self.spaces_for(workload)
        if len(fits) > 1:
            raise SchedError(f"{self.filename} has {len(fits)} spaces for workload {workload} "
                             f"({', '.join(s.name for s in fits)}); pick one with --space")
        if fits:
            return fits[0]
        if self._fallback_space is None:
            raise SchedError(f"{self.filename} has no space for workload {workload}")
        return _Generated(self._fallback_space(), self)

    def check(self, target: Any = None) -> None:
        """Build every workload (default parameters) and run once (seed 0, no compile, for
        ``target``: the host when None) each space that fits it (those bound to it and those
        for any workload) or, when none does, the space ``probsched run`` would use for it
        (the generated one); raise the first error."""
        for name in self._workload_defs:
            wl = self.workload(name)
            spaces = self.spaces_for(name)
            if not spaces and self._fallback_space is not None:
                spaces = [_Generated(self._fallback_space(), self)]
            for sp in spaces:
                sp.apply(Schedule(wl, seed=0, target=target))

    def __repr__(self) -> str:
        return (f"<Module {self.filename}: workloads {self.workload_names}, "
                f"spaces {list(self.spaces)}, rules {list(self.rules)}>")


class _Generated(Space):
    """The generated space on the workloads of a module: an error it meets, located in the
    rule library, is reported at the workload's definition (the library's place follows)."""

    def __init__(self, inner: Space, module: Module):
        self.inner, self.module = inner, module
        self.name, self.workload_name = inner.name, inner.workload_name

    def _run(self, sch: Schedule) -> None:
        try:
            self.inner._run(sch)
        except ProbschedError as exc:
            wdef = self.module._workload_defs.get(sch.workload.name)
            if wdef is None or exc.location is None:
                raise
            message = (f"workload {wdef.name}: the generated space fails on it: "
                       f"{exc.message.splitlines()[0]} (at {exc.location})")
            raise located(type(exc), message, wdef.loc, self.module.ast.source) from None


def _pick(name: str | None, names: list[str], what: str, filename: str) -> str:
    if name is None:
        if len(names) == 1:
            return names[0]
        listed = ", ".join(names) if names else "none"
        raise SchedError(f"{filename} has {len(names) or 'no'} {what}s ({listed}); "
                         f"name one")
    if name not in names:
        raise SchedError(f"{filename} has no {what} {name!r}; {what}s: "
                         f"{', '.join(names) or 'none'}")
    return name
