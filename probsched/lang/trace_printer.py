"""A trace as a .sched space: its instructions one a line, sampling calls with their
``decision=`` pinned. Parsing and running the text reproduces the trace and the program.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), seed=0)
>>> b, i, j, k = sch.get_loops(sch.get_block("C"))
>>> tiles = sch.sample_perfect_tile(i, n=2, max_innermost_factor=8, decision=[8, 8])
>>> io, ii = sch.split(i, tiles)
>>> print(format_trace_space(sch.trace, "gmm"), end="")
space trace for gmm:
    b0 = get_block("C")
    l1, l2, l3, l4 = get_loops(b0)
    v5, v6 = sample_perfect_tile(l2, n=2, max_innermost_factor=8, decision=[8, 8])
    l7, l8 = split(l2, [v5, v6])
"""

from __future__ import annotations

from ..schedule.trace import Trace


def format_trace_space(trace: Trace, workload_name: str | None, space_name: str = "trace") -> str:
    """``space SPACE for WORKLOAD:`` and the trace's lines (``pass`` for an empty trace)."""
    head = f"space {space_name} for {workload_name}:" if workload_name else f"space {space_name}:"
    body = str(trace).splitlines() or ["pass"]
    return "\n".join([head, *("    " + line for line in body)]) + "\n"
