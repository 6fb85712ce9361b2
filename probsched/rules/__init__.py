"""Generated design spaces, written as ``.sched`` rule libraries shipped with the package.

``cpu.sched`` holds MetaSchedule's CPU rules (auto-inline, add-rfactor, multi-level tiling
with a write cache, parallelize-vectorize-unroll, random compute location) applied block by
block in post-order, and ``space generated``, which works for any workload. A ``.sched`` file
uses them with ``use "probsched:cpu.sched"``. The language's loader finds them
(:mod:`probsched.lang.loader`); this package names them for Python users.
"""

from ..lang.loader import generated_space, library, library_path

__all__ = ["generated_space", "library", "library_path"]
