"""The grammar's single source is the top-level grammar/; the installed package ships a copy of
it and the rule files, and declares its command.

``test_wheel_installs_and_parses`` builds the wheel, installs it in a fresh venv outside the
checkout and parses an example there. It runs offline: the build backend (hatchling) is in
the ``test`` extra, so the wheel is built without build isolation, and the fresh venv borrows
the running environment's installed dependencies (numpy, lark, ...) through a ``.pth`` file.
"""

import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import lark
import pytest

import probsched as ps
from probsched.errors import ProbschedError
from probsched.lang import grammar
from probsched.lang.grammar import grammar_text

REPO = Path(__file__).resolve().parent.parent
GRAMMAR = REPO / "grammar" / "sched.lark"
EXAMPLE = REPO / "examples" / "matmul.sched"
BUILD_INPUTS = ("pyproject.toml", "README.md", "grammar", "probsched")  # what the build reads


def test_grammar_single_source():
    assert GRAMMAR.is_file()
    assert not (REPO / "probsched" / "grammar" / "sched.lark").exists()  # only in the wheel
    assert grammar_text() == GRAMMAR.read_text(encoding="utf-8")


def test_grammar_missing_is_a_clear_error(monkeypatch, tmp_path):
    nowhere = [tmp_path / "a" / "sched.lark", tmp_path / "b" / "sched.lark"]
    monkeypatch.setattr(grammar, "_candidates", lambda: nowhere)
    with pytest.raises(ProbschedError, match="grammar") as info:
        grammar_text()
    assert all(str(path) in str(info.value) for path in nowhere)


def test_rule_library_is_package_data():
    resource = importlib.resources.files("probsched.rules").joinpath("cpu.sched")
    assert resource.is_file() and "space generated" in resource.read_text(encoding="utf-8")


def test_grammar_builds_lalr_parser():
    lark.Lark(grammar_text(), parser="lalr")


def test_grammar_builds_in_strict_mode():
    # strict=True needs the `interegular` extra of lark, declared in pyproject.toml.
    lark.Lark(grammar_text(), parser="lalr", strict=True, propagate_positions=True)


def test_console_script_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [ep.value for ep in scripts if ep.name == "probsched"] == ["probsched.driver.cli:main"]


def _source_files() -> list[str]:
    """The build's input files, relative to the checkout: those git tracks or would track."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
             *BUILD_INPUTS],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: all but caches
        listed = [
            p.relative_to(REPO).as_posix()
            for name in BUILD_INPUTS
            for p in ([REPO / name] if (REPO / name).is_file() else (REPO / name).rglob("*"))
            if "__pycache__" not in p.parts and not p.name.endswith(".pyc")
        ]
    return sorted(f for f in listed if f and (REPO / f).is_file())


def _run(*args, **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# Run in the fresh venv: where probsched comes from, the grammar it reads, a parsed example.
_PROBE = """
import importlib.resources, json, sys
import probsched
from probsched.lang.grammar import grammar_text
module = probsched.load(sys.argv[1])
print(json.dumps({
    "probsched": probsched.__file__,
    "shipped_grammar": importlib.resources.files("probsched").joinpath(
        "grammar", "sched.lark").is_file(),
    "grammar": grammar_text(),
    "workloads": sorted(module.workloads),
    "spaces": sorted(module.spaces),
    "path": sys.path,
    "finders": [type(finder).__module__ for finder in sys.meta_path],
}))
"""


def test_wheel_installs_and_parses(tmp_path):
    """Build the wheel from the checkout's files, install it in a fresh venv outside the
    checkout and, from there, import probsched (the wheel's), read the grammar and parse."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("the build backend hatchling is missing: install the test extra, "
                    "pip install -e '.[test]'")
    assert not tmp_path.resolve().is_relative_to(REPO)

    src = tmp_path / "src"
    files = _source_files()
    assert "grammar/sched.lark" in files and "probsched/rules/cpu.sched" in files
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(dist), str(src))
    (wheel,) = dist.glob("probsched-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f for f in files if f.startswith("probsched/") and f.endswith((".py", ".sched"))}
    assert "probsched/rules/cpu.sched" in wanted
    wanted |= {"probsched/search/data/cpu_znver3.npz", "probsched/search/data/cpu_znver3.json"}
    wanted |= {f"probsched/search/data/cpu_znver3_traces.{ext}"
               for ext in ("npz", "json", "traces.jsonl.gz")}
    wanted.add("probsched/grammar/sched.lark")  # the copy of grammar/sched.lark
    assert wanted <= shipped, sorted(wanted - shipped)
    assert not any(name.startswith("grammar/") for name in shipped)

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # no PYTHONPATH
    # pip runs the fresh venv's interpreter (--python), so the wheel lands there.
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel), env=env)
    # Only now (so that pip does not see them) lend the fresh venv the installed dependencies:
    # plain directory lines in a .pth, so the .pth files in those directories (this
    # environment's editable probsched among them) are not processed.
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run(str(python), "-c", where, env=env).strip())
    lent = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    lent = [d for d in lent if Path(d).is_dir() and Path(d).resolve() != REPO]
    (purelib / "_probsched_test_deps.pth").write_text("\n".join(lent) + "\n")

    away = tmp_path / "elsewhere"
    away.mkdir()
    probe = json.loads(_run(str(python), "-c", _PROBE, str(EXAMPLE), cwd=away, env=env))
    assert Path(probe["probsched"]).resolve().is_relative_to(purelib.resolve()), probe["probsched"]
    assert not any(p and Path(p).resolve() == REPO for p in probe["path"]), probe["path"]
    assert not any("editable" in finder for finder in probe["finders"]), probe["finders"]
    assert probe["shipped_grammar"]
    assert probe["grammar"] == GRAMMAR.read_text(encoding="utf-8")
    here = ps.load(EXAMPLE)
    assert probe["workloads"] == sorted(here.workloads) and probe["workloads"]
    assert probe["spaces"] == sorted(here.spaces) and probe["spaces"]

    # The console script of the wheel, run the same way.
    out = _run(str(venv / "bin" / "probsched"), "check", str(EXAMPLE), cwd=away, env=env)
    assert "ok" in out
