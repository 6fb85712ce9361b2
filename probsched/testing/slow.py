"""Slow builds, for tests of distributed measurement: a lowering pass that sleeps.

A loop annotated ``slow_build = ms`` (``sch.annotate(loop, "slow_build", 3000)``) makes the
build of its program sleep that many milliseconds in the lowering, so that a test can kill the
worker building it while the build is in flight. Build with ``passes=slow.PASSES``.

>>> import probsched as ps
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=4, m=4, k=4))
>>> sch.annotate(sch.get_loops(sch.get_block("C"))[1], SLOW, 1)
>>> sleep_if_slow(sch.program) is sch.program
True
"""

from __future__ import annotations

import time

from ..codegen.passes import Pass
from ..ir.program import Loop, Program

SLOW = "slow_build"
"""The loop annotation that asks for a slow build (its value: milliseconds)."""


def sleep_if_slow(program: Program) -> Program:
    """Sleep for every loop annotated :data:`SLOW` (its milliseconds); the program as is."""
    total = 0.0
    stack = list(program.body)
    while stack:
        node = stack.pop()
        if isinstance(node, Loop):
            total += float(dict(node.annotations).get(SLOW, 0)) / 1e3
            stack.extend(node.body)
    time.sleep(total)
    return program


PASSES: tuple[Pass, ...] = (("sleep_if_slow", sleep_if_slow),)
