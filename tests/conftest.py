"""Shared pytest setup: golden files, hypothesis profiles, and children bound by permissions.

Golden files: ``golden(text)`` compares ``text`` with
``tests/golden/<module without test_>/<test name>.txt``. Run ``python -m pytest --update-golden``
to (re)write them; a missing file is written and the test passes with a warning, except
under CI (``CI`` set), where a missing golden file fails the test.

Hypothesis: the profile comes from the ``HYPOTHESIS_PROFILE`` environment variable
("default", "ci" or "nightly"; "default" when unset).

``permissions_bind``: a ``preexec_fn`` for a child process that chmod stops, even as root.
"""

import ctypes
import difflib
import functools
import os
import re
import subprocess
import sys
import tempfile
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


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac_capabilities() -> None:
    """In a child before exec: drop root's power to ignore file permissions."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@functools.cache
def _dropping_works() -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        locked = Path(tmp) / "locked"
        locked.write_text("")
        locked.chmod(0o444)
        try:
            child = subprocess.run([sys.executable, "-c", f"open({str(locked)!r}, 'w')"],
                                   preexec_fn=_drop_dac_capabilities, capture_output=True,
                                   timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return child.returncode != 0 and b"PermissionError" in child.stderr


@pytest.fixture
def permissions_bind():
    """A ``preexec_fn`` for ``subprocess`` under which the child obeys file permissions (None:
    it does anyway). Root writes a chmod 0o444 file or into a 0o555 directory regardless, so as
    root the child's capability bounding set loses CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (it
    stays root, owning what root owns); where that fails, the test is skipped, saying why."""
    if os.geteuid() != 0:
        return None
    if not _dropping_works():
        pytest.skip("running as root, whom chmod does not stop, and CAP_DAC_OVERRIDE cannot be "
                    "dropped here (prctl PR_CAPBSET_DROP refused): no way to make a file "
                    "unwritable")
    return _drop_dac_capabilities
