"""The .sched grammar: one Lark file, kept once at the repository's top, ``grammar/sched.lark``.

The build backend copies it into the wheel as ``probsched/grammar/sched.lark`` (see
``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml), so an installed package
reads that copy. A source checkout or an editable install has no such copy and reads the
checkout's ``grammar/sched.lark`` instead, beside the ``probsched/`` folder. (hatchling's
editable install also puts the copy in site-packages, under a ``probsched/`` folder with no
``__init__.py``; the checkout's package is the one imported, so that copy is never read.)
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import ProbschedError

__all__ = ["grammar_text"]


def _candidates() -> list[Traversable]:
    """Where the grammar may be, in the order tried: the installed copy, then the checkout's."""
    package = files("probsched")
    checkout = Path(__file__).resolve().parent.parent.parent  # the folder holding probsched/
    return [package.joinpath("grammar", "sched.lark"), checkout / "grammar" / "sched.lark"]


def grammar_text() -> str:
    """Return the text of ``sched.lark``, the whole .sched language in one Lark grammar."""
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    looked = ", ".join(str(c) for c in candidates)
    raise ProbschedError(
        f"the .sched grammar (sched.lark) was not found; looked in: {looked}. An installed "
        "probsched ships it inside the package; a source checkout has it at grammar/sched.lark"
    )
