"""Generated design spaces, written as ``.sched`` rule libraries shipped with the package.

``cpu.sched`` holds MetaSchedule's CPU rules (auto-inline, add-rfactor, multi-level tiling
with a write cache, parallelize-vectorize-unroll, random compute location) applied block by
block in post-order, and ``space generated``, which works for any workload. A ``.sched`` file
uses them with ``use "probsched:cpu.sched"``.

>>> import probsched as ps
>>> from probsched.rules import generated_space
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=16, m=16, k=16), seed=0)
>>> _ = generated_space().apply(sch)
>>> "parallel" in str(sch.program) and "vectorized" in str(sch.program)
True
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

__all__ = ["generated_space", "library", "library_path"]


def library_path(name: str) -> Path:
    """The file of the built-in rule library ``name`` (``"cpu.sched"``)."""
    path = Path(str(resources.files(__name__).joinpath(name)))
    if not path.is_file():
        from ..lang.errors import SchedError

        known = ", ".join(sorted(p.name for p in path.parent.glob("*.sched")))
        raise SchedError(f"no built-in rule library {name!r}; known: {known}")
    return path


@functools.cache
def library(name: str = "cpu.sched"):
    """The built-in rule library ``name`` loaded as a module (its rules and spaces)."""
    from ..lang.module import load

    return load(library_path(name))


def generated_space():
    """The generated space for any workload: ``space generated`` of ``cpu.sched``."""
    return library("cpu.sched").space("generated")
