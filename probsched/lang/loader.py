"""Loading `.sched` files: ``ps.load`` / ``ps.parse``, the files they ``use``, the rule
libraries shipped with probsched (``probsched/rules/*.sched``, package data, named as
``use "probsched:cpu.sched"``) and the generated space, ``space generated`` of ``cpu.sched``,
which a workload whose file has no space gets.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=16, m=16, k=16), seed=0)
>>> _ = generated_space().apply(sch)
>>> "parallel" in str(sch.program) and "vectorized" in str(sch.program)
True
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

from ..errors import Location, ProbschedError
from ..schedule import Schedule
from . import ast
from .errors import SchedError, located
from .limits import MAX_USE_DEPTH, read_text
from .module import Module
from .parser import parse as parse_ast
from .space import Space

BUILTIN_PREFIX = "probsched:"  # `use "probsched:cpu.sched"`: a library in probsched/rules/


def library_path(name: str) -> Path:
    """The file of the built-in rule library ``name`` (``"cpu.sched"``)."""
    folder = Path(str(resources.files("probsched").joinpath("rules")))
    path = folder / name
    if path.suffix != ".sched" or not path.is_file():
        known = ", ".join(sorted(p.name for p in folder.glob("*.sched")))
        raise SchedError(f"no built-in rule library {name!r}; known: {known}")
    return path


@functools.cache
def library(name: str = "cpu.sched") -> Module:
    """The built-in rule library ``name`` loaded as a module (its rules and spaces)."""
    return load(library_path(name))


def generated_space() -> Space:
    """The generated space for any workload: ``space generated`` of the rule library for the
    schedule's target, ``cpu.sched`` or (a cuda target) ``cuda.sched``."""
    return _BY_TARGET


class _GeneratedByTarget(Space):
    """``space generated`` of the library for each schedule's kind of target."""

    name, workload_name = "generated", None
    LIBRARIES = {"cpu": "cpu.sched", "cuda": "cuda.sched"}

    def for_kind(self, kind: str) -> Space:
        return library(self.LIBRARIES.get(kind, "cpu.sched")).space("generated")

    def _run(self, sch: Schedule) -> None:
        self.for_kind(sch.target.kind)._run(sch)


_BY_TARGET = _GeneratedByTarget()


def parse(text: str, filename: str = "<string>") -> Module:
    """A .sched module from text; ``use`` paths resolve relative to ``filename``'s folder
    (the current folder for ``<string>``)."""
    tree = parse_ast(text, filename)
    loading: tuple[Path, ...]
    if filename.startswith("<"):
        root_dir, loading = Path.cwd(), ()
        unit = filename
    else:
        path = Path(filename).resolve()
        root_dir, loading = path.parent, (path,)
        unit = path.name
    return _module(tree, unit, root_dir, loading, {})


def load(path: str | os.PathLike) -> Module:
    """Load a .sched file (and the rule files it uses); at most
    :data:`~probsched.lang.limits.MAX_FILE_BYTES` of it are read."""
    try:
        text = read_text(Path(path))
    except ProbschedError as exc:  # too long: at its start
        raise SchedError(exc.message, Location(os.fspath(path), 1, 1)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProbschedError(f"cannot read {os.fspath(path)}: {exc}") from None
    return parse(text, os.fspath(path))


def _module(tree: ast.Module, unit: str, root_dir: Path, loading: tuple[Path, ...],
            loaded: dict[Path, Module]) -> Module:
    libraries = []
    for use in tree.of_type(ast.Use):
        libraries.append((use, _use(tree, use, root_dir, loading, loaded)))
    return Module(tree, unit, libraries, fallback_space=generated_space)


def _use(tree: ast.Module, use: ast.Use, root_dir: Path, loading: tuple[Path, ...],
         loaded: dict[Path, Module]) -> Module:
    here = Path(tree.filename).parent if not tree.filename.startswith("<") else Path.cwd()
    builtin = use.path.startswith(BUILTIN_PREFIX)
    if builtin:
        try:
            target = library_path(use.path[len(BUILTIN_PREFIX):])
        except SchedError as exc:
            raise located(SchedError, exc.message, use.loc, tree.source) from None
    else:
        try:
            target = (here / use.path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
            raise located(SchedError, f"cannot use {use.path!r}: {exc}", use.loc,
                          tree.source) from None
    if target in loading:
        chain = " -> ".join(p.name for p in (*loading[loading.index(target):], target))
        raise located(SchedError, f"use cycle: {chain}", use.loc, tree.source)
    if target in loaded:
        return loaded[target]
    if len(loading) >= MAX_USE_DEPTH:
        raise located(SchedError, f"more than {MAX_USE_DEPTH} files in a chain of uses (the "
                      "limit)", use.loc, tree.source)
    display = (use.path if builtin else
               os.path.normpath(os.path.join(os.path.dirname(tree.filename), use.path)))
    try:
        text = read_text(target)
    except (OSError, UnicodeDecodeError, ProbschedError) as exc:
        reason = ("no such file" if isinstance(exc, FileNotFoundError) else
                  "a folder, not a file" if isinstance(exc, IsADirectoryError) else
                  exc.message if isinstance(exc, ProbschedError) else str(exc))
        raise located(SchedError, f"cannot use {use.path!r}: {reason} ({target})", use.loc,
                      tree.source) from None
    unit = use.path if builtin else Path(os.path.relpath(target, root_dir)).as_posix()
    lib = _module(parse_ast(text, display), unit, root_dir, (*loading, target), loaded)
    loaded[target] = lib
    return lib
