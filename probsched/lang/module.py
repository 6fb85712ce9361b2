"""Loaded .sched files: workloads, spaces and rules, and Python functions as spaces.

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

import functools
import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import Location, ProbschedError
from ..ir.compute import Workload
from ..schedule import Schedule
from . import ast
from .errors import SchedError, located
from .interpreter import BUILTINS, CONSTANTS, Code, Interpreter, bind_problem, primitives
from .parser import parse as parse_ast
from .workload_builder import build_workload

Decisions = dict[Any, Any]
BUILTIN_PREFIX = "probsched:"  # `use "probsched:cpu.sched"`: a library in probsched/rules/


class Space:
    """A space: run it on a schedule with :meth:`apply`. Two kinds, same interface: spaces of
    .sched files and Python functions decorated with :func:`space`."""

    name: str
    workload_name: str | None

    def apply(self, sch: Schedule, decisions: Mapping[Any, Any] | None = None) -> Decisions:
        """Run the space on ``sch`` (recording into its trace). Sampling calls whose address
        is in ``decisions`` use that decision, the others sample from ``sch``'s generator.
        Returns the decisions made, by address, in the order they were made (the k-th is the
        decision of the k-th sampling instruction of the trace)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        bound = f" for {self.workload_name}" if self.workload_name else ""
        return f"<{type(self).__name__} {self.name}{bound}>"


class SchedSpace(Space):
    """A ``space`` block; addresses are call sites plus the dynamic path (see interpreter)."""

    def __init__(self, code: Code, module: Module):
        self.code = code
        self.module = module
        self.name = code.name
        self.workload_name = code.node.workload

    @property
    def location(self) -> Location:
        return self.code.node.loc

    def apply(self, sch: Schedule, decisions: Mapping[Any, Any] | None = None) -> Decisions:
        if self.workload_name is not None and sch.workload.name != self.workload_name:
            raise located(SchedError, f"space {self.name} is for workload {self.workload_name}, "
                          f"not {sch.workload.name}", self.location, self.code.source)
        return Interpreter(sch, self.module.rules, decisions).run_space(self.code)


class PythonSpace(Space):
    """A Python function ``f(sch)`` as a space; a sampling call's address is its order index
    (0, 1, ...) since it has no source location."""

    def __init__(self, fn: Callable[[Schedule], Any], name: str | None = None,
                 workload: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.workload_name = workload
        functools.update_wrapper(self, fn)

    def __call__(self, sch: Schedule) -> Any:
        return self.fn(sch)

    def apply(self, sch: Schedule, decisions: Mapping[Any, Any] | None = None) -> Decisions:
        decisions = decisions or {}
        recorded: Decisions = {}
        counter = itertools.count()

        def addressed(method):
            def call(*args, **kwargs):
                k = next(counter)
                if k in decisions:
                    kwargs["decision"] = decisions[k]
                out = method(sch, *args, **kwargs)
                trace = sch.trace
                recorded[k] = trace.decision(len(trace) - 1)
                return out

            return call

        patched = [name for name, (_, _, sampling) in primitives().items() if sampling]
        for name in patched:
            sch.__dict__[name] = addressed(getattr(Schedule, name))
        try:
            self.fn(sch)
        finally:
            for name in patched:
                sch.__dict__.pop(name, None)
        return recorded


def space(fn: Callable | None = None, *, name: str | None = None,
          workload: str | None = None):
    """Make a Python function ``f(sch)`` a :class:`Space`: ``@ps.space`` or
    ``@ps.space(workload="gmm")``."""
    if fn is None:
        return lambda f: PythonSpace(f, name, workload)
    return PythonSpace(fn, name, workload)


class Module:
    """A loaded .sched file: ``.workloads`` and ``.spaces`` by name, ``.rules`` (its own and
    those of the files it ``use``\\ s)."""

    def __init__(self, tree: ast.Module, unit: str, libraries: list[tuple[ast.Use, Module]]):
        self.filename = tree.filename
        self.ast = tree
        self.unit = unit
        self._workload_defs: dict[str, ast.WorkloadDef] = {}
        self.rules: dict[str, Code] = {}
        self.spaces: dict[str, Space] = {}
        for item in tree.items:
            if isinstance(item, ast.WorkloadDef):
                self._unique(item, self._workload_defs, "workload")
                self._workload_defs[item.name] = item
            elif isinstance(item, ast.RuleDef):
                self._unique(item, self.rules, "rule")
                if item.name in BUILTINS or item.name in primitives():
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
        for item in tree.of_type(ast.SpaceDef):
            self._unique(item, self.spaces, "space")
            if (item.workload is not None and self._workload_defs
                    and item.workload not in self._workload_defs):
                raise self._error(f"space {item.name} is for an unknown workload "
                                  f"{item.workload}; workloads here: "
                                  f"{', '.join(self._workload_defs)}", item.loc)
            self.spaces[item.name] = SchedSpace(Code(item, tree.source, unit), self)
        for code in [*self.rules.values(), *(s.code for s in self.spaces.values())]:
            if code.unit == unit:
                _check_code(code, self.rules)

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
        wdef = self._workload_defs[_pick(name, list(self._workload_defs), "workload",
                                         self.filename)]
        return build_workload(wdef, self.ast.source, params)

    def space(self, name: str | None = None) -> Space:
        """The space ``name`` (the only one when None; the generated space of
        ``probsched/rules/cpu.sched`` when None and the file has no space)."""
        if name is None and not self.spaces:
            from ..rules import generated_space

            return generated_space()
        return self.spaces[_pick(name, list(self.spaces), "space", self.filename)]

    def spaces_for(self, workload: str) -> list[Space]:
        """The spaces bound to ``workload`` and those for any workload."""
        return [s for s in self.spaces.values() if s.workload_name in (None, workload)]

    def check(self) -> None:
        """Build every workload (default parameters) and run each space bound to one of them
        once (seed 0, no compile); raise the first error."""
        for name in self._workload_defs:
            wl = self.workload(name)
            for sp in self.spaces.values():
                if sp.workload_name == name:
                    sp.apply(Schedule(wl, seed=0))

    def __repr__(self) -> str:
        return (f"<Module {self.filename}: workloads {self.workload_names}, "
                f"spaces {list(self.spaces)}, rules {list(self.rules)}>")


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


# ---------------------------------------------------------------- static checks


def _check_code(code: Code, rules: Mapping[str, Code]) -> None:
    """Unknown names and functions and wrong arities, found without running."""
    node = code.node
    defined = set(CONSTANTS)
    if isinstance(node, ast.RuleDef):
        defined |= {p.name for p in node.params}
    _assigned(node.body, defined)

    def err(message: str, loc: Location) -> ProbschedError:
        return located(SchedError, message, loc, code.source)

    def expr(e) -> None:
        if isinstance(e, ast.Name):
            if e.id not in defined:
                raise err(f"name '{e.id}' is not defined", e.loc)
        elif isinstance(e, ast.Call):
            for a in e.args:
                expr(a)
            for _, v in e.kwargs:
                expr(v)
            call(e)
        elif isinstance(e, ast.ListExpr):
            for x in e.items:
                expr(x)
        elif isinstance(e, ast.Index):
            expr(e.value)
            for x in e.indices:
                expr(x)
        elif isinstance(e, ast.BinOp | ast.Compare | ast.BoolOp):
            expr(e.left)
            expr(e.right)
        elif isinstance(e, ast.UnaryOp):
            expr(e.operand)

    def call(e: ast.Call) -> None:
        kwargs = {k: None for k, _ in e.kwargs}
        if e.func in rules:
            problem = bind_problem(rules[e.func].node.params, len(e.args), kwargs)
            if problem:
                raise err(f"{e.func}(): {problem}", e.loc)
        elif e.func in primitives():
            try:
                primitives()[e.func][1].bind(None, *e.args, **kwargs)
            except TypeError as exc:
                raise err(f"{e.func}(): {exc}", e.loc) from None
        elif e.func not in BUILTINS:
            from .interpreter import _unknown

            known = [*rules, *BUILTINS, *primitives()]
            raise err(_unknown(f"unknown function '{e.func}'", e.func, known), e.loc)

    def stmts(body) -> None:
        for s in body:
            if isinstance(s, ast.Assign | ast.ExprStmt):
                expr(s.value)
            elif isinstance(s, ast.Return):
                for v in s.values:
                    expr(v)
            elif isinstance(s, ast.If):
                for cond, b in s.branches:
                    expr(cond)
                    stmts(b)
                stmts(s.orelse)
            elif isinstance(s, ast.For):
                expr(s.iter)
                stmts(s.body)

    if isinstance(node, ast.RuleDef):
        for p in node.params:
            if p.default is not None:
                expr(p.default)
    stmts(node.body)


def _assigned(body, names: set[str]) -> None:
    for s in body:
        if isinstance(s, ast.Assign):
            names.update(s.targets)
        elif isinstance(s, ast.For):
            names.add(s.target)
            _assigned(s.body, names)
        elif isinstance(s, ast.If):
            for _, b in s.branches:
                _assigned(b, names)
            _assigned(s.orelse, names)


# ---------------------------------------------------------------- loading


def _module(tree: ast.Module, unit: str, root_dir: Path, loading: tuple[Path, ...],
            loaded: dict[Path, Module]) -> Module:
    libraries = []
    for use in tree.of_type(ast.Use):
        libraries.append((use, _use(tree, use, root_dir, loading, loaded)))
    return Module(tree, unit, libraries)


def _use(tree: ast.Module, use: ast.Use, root_dir: Path, loading: tuple[Path, ...],
         loaded: dict[Path, Module]) -> Module:
    here = Path(tree.filename).parent if not tree.filename.startswith("<") else Path.cwd()
    builtin = use.path.startswith(BUILTIN_PREFIX)
    if builtin:  # a rule library shipped in probsched/rules/: use "probsched:cpu.sched"
        from ..rules import library_path

        try:
            target = library_path(use.path[len(BUILTIN_PREFIX):])
        except SchedError as exc:
            raise located(SchedError, exc.message, use.loc, tree.source) from None
    else:
        target = (here / use.path).resolve()
    if target in loading:
        chain = " -> ".join(p.name for p in (*loading[loading.index(target):], target))
        raise located(SchedError, f"use cycle: {chain}", use.loc, tree.source)
    if target in loaded:
        return loaded[target]
    display = (use.path if builtin else
               os.path.normpath(os.path.join(os.path.dirname(tree.filename), use.path)))
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
        raise located(SchedError, f"cannot use {use.path!r}: {reason} ({target})", use.loc,
                      tree.source) from None
    unit = use.path if builtin else Path(os.path.relpath(target, root_dir)).as_posix()
    lib = _module(parse_ast(text, display), unit, root_dir, (*loading, target), loaded)
    loaded[target] = lib
    return lib


def parse(text: str, filename: str = "<string>") -> Module:
    """A .sched module from text; ``use`` paths resolve relative to ``filename``'s folder
    (the current folder for ``<string>``)."""
    tree = parse_ast(text, filename)
    if filename.startswith("<"):
        root_dir, loading = Path.cwd(), ()
        unit = filename
    else:
        path = Path(filename).resolve()
        root_dir, loading = path.parent, (path,)
        unit = path.name
    return _module(tree, unit, root_dir, loading, {})


def load(path: str | os.PathLike) -> Module:
    """Load a .sched file (and the rule files it uses)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbschedError(f"cannot read {os.fspath(path)}: {exc}") from None
    return parse(text, os.fspath(path))
