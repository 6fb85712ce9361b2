"""The Schedule: a program being transformed, the trace of what was done, and a seeded random
state. Every primitive is a method that checks its arguments, applies a pure function of the
program (``primitives/``), and records an instruction. An illegal step raises ScheduleError
naming the primitive, its arguments and the reason, and leaves the schedule unchanged.

The methods live by family: :mod:`.queries` (plain values, nothing recorded),
``methods/lookup.py`` (blocks and loops as random variables), ``methods/loops.py``,
``methods/blocks.py`` (caching, compute location, inlining), ``methods/reduction.py`` and
``methods/sampling.py``; :mod:`.state` holds what they share. Each instruction and query is
declared once, in :mod:`.registry`.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), seed=0)
>>> b, i, j, k = sch.get_loops(sch.get_block("C"))
>>> io, ii = sch.split(i, [None, 8])
>>> sch.get(io), sch.get(ii)
('i_0', 'i_1')
>>> print(sch.trace)
b0 = get_block("C")
l1, l2, l3, l4 = get_loops(b0)
l5, l6 = split(l2, [None, 8])
"""

from __future__ import annotations

from .methods.blocks import BlockMethods
from .methods.lookup import LookupMethods
from .methods.loops import LoopMethods
from .methods.reduction import ReductionMethods
from .methods.sampling import SamplingMethods
from .queries import QueryMethods
from .registry import implemented_by


@implemented_by
class Schedule(LookupMethods, LoopMethods, BlockMethods, ReductionMethods, SamplingMethods,
               QueryMethods):
    """A workload's program under transformation, for a target (the host when None), reusing
    the decisions of ``decisions`` (by address) where a sampling call has one. Primitives are
    methods; ``trace`` records them; ``get(rv)`` gives a random variable's value; queries
    such as ``vector_lanes()`` read the target."""


__all__ = ["Schedule"]
