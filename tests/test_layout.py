"""The layout is a test: every import of probsched (function-local ones too) points the way
docs/architecture.md's table says, no package or module imports in a cycle, every file is
under the size cap, and the architecture doc names every module."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "probsched"
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 400
"""The team's cap on a file's length (doctests included): past it, split by what it holds."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _unit(module: str) -> str:
    """The layer a module belongs to: its package under probsched (or the top-level module's
    own name: errors, values, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else "probsched"


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported probsched module, line) for every import in the file, wherever it is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("probsched"):
                continue
            for alias in node.names:  # `from . import x` may name a module
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in MODULES else target, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("probsched")]
    return out


def _allowed() -> dict[str, set[str]]:
    """The table of docs/architecture.md: each layer and what it may import."""
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w.]+)` \| (.*?) \|$", text, flags=re.M)
    assert rows, "docs/architecture.md lacks its table of layers"
    allowed = {}
    for unit, may in rows:
        names = set(re.findall(r"`([\w.]+)`", may))
        allowed[unit] = {"everything"} if "everything" in may else names
    return allowed


ALLOWED = _allowed()


def test_every_module_belongs_to_a_layer_of_the_table():
    missing = sorted({_unit(m) for m in MODULES} - set(ALLOWED))
    assert not missing, f"not in docs/architecture.md's table of layers: {missing}"


def test_imports_point_the_way_the_architecture_says():
    wrong = []
    for module, path in MODULES.items():
        unit = _unit(module)
        may = ALLOWED[unit]
        for target, line in _imports(module, path):
            other = _unit(target)
            if other == unit or "everything" in may or other in may:
                continue
            if other == "probsched" and target == "probsched":
                wrong.append(f"{path.relative_to(ROOT)}:{line}: imports the package itself")
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {unit} imports {target} "
                         f"({other}); {unit} may import {', '.join(sorted(may)) or 'nothing'}")
    assert not wrong, "\n".join(wrong)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _graph(unit_of) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target, _ in _imports(module, path):
            a, b = unit_of(module), unit_of(target)
            if a != b:
                edges[a].add(b)
    return edges


def test_no_two_packages_import_each_other():
    assert _cycles(_graph(_unit)) == []


def test_no_two_modules_import_each_other():
    """Within a package too. Importing one's own package (its ``__init__`` re-exports) is
    not counted; a package's ``__init__`` importing its modules is."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target, _ in _imports(module, path):
            own_package = MODULES[target].name == "__init__.py" and module.startswith(
                target + ".")
            if target != module and not own_package:
                edges[module].add(target)
    assert _cycles(edges) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(
    p.relative_to(ROOT)))
def test_files_are_under_the_size_cap(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (cap {MAX_LINES})"


def test_the_architecture_doc_names_every_module():
    """By its path under probsched/, or by its file name where no other module has it."""
    text = DOC.read_text(encoding="utf-8")
    names = [p.name for p in MODULES.values()]
    missing = []
    for path in MODULES.values():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        unique = names.count(path.name) == 1
        if f"`{rel}`" not in text and not (unique and f"`{path.name}`" in text):
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name: {missing}"
