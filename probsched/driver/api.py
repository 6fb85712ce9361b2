"""The top-level conveniences: compile, measure and the reference on workloads, programs and
schedules alike."""

from __future__ import annotations

from ..codegen import Kernel, compile_program
from ..ir.compute import Workload
from ..ir.program import Program, lower
from ..ir.reference import reference
from ..schedule import Schedule


def _program(what: Schedule | Program | Workload) -> Program:
    if isinstance(what, Schedule):
        return what.program
    if isinstance(what, Workload):
        return lower(what)
    return what


def compile(what: Schedule | Program | Workload, **options) -> Kernel:  # noqa: A001
    """JIT-compile in this process; ``kernel(*inputs)`` returns the outputs. A schedule's
    code is built for its target; ``target=`` says otherwise.

    >>> import numpy as np, probsched as ps
    >>> wl = ps.workloads.gmm(b=1, n=4, m=3, k=5)
    >>> a, b = np.ones((1, 4, 5), np.float32), np.ones((1, 5, 3), np.float32)
    >>> (c,) = ps.compile(wl)(a, b)
    >>> float(c[0, 0, 0])
    5.0
    """
    if isinstance(what, Schedule):
        options.setdefault("target", what.target)
    return compile_program(_program(what), **options)


def measure(what: Schedule | Program, workload: Workload | None = None, **options):
    """Build and run in isolated worker processes, checked against the reference: a
    :class:`~probsched.measure.RunResult` (``.correct``, ``.latency_s``, ``.error``)."""
    from ..measure import measure as run_isolated

    if isinstance(what, Schedule):
        workload = workload or what.workload
        options.setdefault("target", what.target)
    if workload is None:
        raise TypeError("measure(program) needs the workload too")
    return run_isolated(_program(what), workload, **options)


__all__ = ["compile", "measure", "reference"]
