"""The installed package ships its grammar and rule files and declares its command."""

import importlib.metadata
import importlib.resources
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import lark
import pytest

from probsched.grammar import grammar_text

REPO = Path(__file__).resolve().parent.parent


def test_grammar_is_package_data():
    resource = importlib.resources.files("probsched.grammar").joinpath("sched.lark")
    assert resource.is_file()
    assert resource.read_text(encoding="utf-8") == grammar_text()


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
    assert [ep.value for ep in scripts if ep.name == "probsched"] == ["probsched.cli:main"]


@pytest.mark.slow
def test_wheel_ships_grammar_and_rules(tmp_path):
    """A regular (non-editable) wheel holds every module, the grammar and the rule files.

    Builds with pip's build isolation, so it needs PyPI (for setuptools).
    """
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "probsched", src / "probsched", ignore=ignore)
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)]
    subprocess.run(pip_wheel, check=True)
    (wheel,) = dist.glob("probsched-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        p.relative_to(src).as_posix()
        for p in (src / "probsched").rglob("*")
        if p.suffix in {".py", ".lark", ".sched"}
    }
    assert "probsched/grammar/sched.lark" in wanted
    assert "probsched/rules/cpu.sched" in wanted
    assert wanted <= shipped, sorted(wanted - shipped)
