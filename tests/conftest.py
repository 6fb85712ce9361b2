"""Shared pytest setup: golden files and hypothesis profiles.

Golden files: ``golden(text)`` compares ``text`` with
``tests/golden/<module without test_>/<test name>.txt``. Run ``python -m pytest --update-golden``
to (re)write them; a missing file is written and the test passes with a warning, except
under CI (``CI`` set), where a missing golden file fails the test.

Hypothesis: the profile comes from the ``HYPOTHESIS_PROFILE`` environment variable
("default", "ci" or "nightly"; "default" when unset).
"""

import difflib
import os
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import settings

GOLDEN_DIR = Path(__file__).parent / "golden"

settings.register_profile("default", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None)
settings.register_profile("nightly", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class GoldenFileWritten(UserWarning):
    """A golden file was created or updated instead of compared."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="write golden files under tests/golden/ instead of comparing against them",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {settings._current_profile}"


def _golden_path(request: pytest.FixtureRequest, name: str | None) -> Path:
    module = Path(request.node.path).stem.removeprefix("test_")
    stem = name if name is not None else request.node.name  # includes [params] if parametrized
    stem = re.sub(r"[^A-Za-z0-9_.\-\[\]]", "_", stem)
    return GOLDEN_DIR / module / f"{stem}.txt"


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Return ``check(text, name=None)``: compare ``text`` with its golden file.

    ``name`` defaults to the test's name; pass distinct names to check several texts in one test.
    """
    update = request.config.getoption("--update-golden")
    used: set[Path] = set()

    def check(text: str, name: str | None = None) -> None:
        path = _golden_path(request, name)
        if path in used:
            raise ValueError(f"golden file {path.name} used twice in one test; pass name=...")
        used.add(path)
        if not text.endswith("\n"):
            text += "\n"
        rel = path.relative_to(GOLDEN_DIR.parent.parent)
        if not path.exists() and not update and os.environ.get("CI"):
            pytest.fail(f"golden file {rel} is missing (commit it; run with --update-golden)")
        if update or not path.exists():
            old = path.read_text(encoding="utf-8") if path.exists() else None
            if old != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                verb = "created" if old is None else "updated"
                warnings.warn(GoldenFileWritten(f"golden file {verb}: {rel}"), stacklevel=2)
            return
        expected = path.read_text(encoding="utf-8")
        if text != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"{rel} (golden)",
                    tofile="actual",
                )
            )
            pytest.fail(
                f"output differs from golden file {rel}"
                f" (rerun with --update-golden to accept):\n{diff}",
                pytrace=False,
            )

    return check
