"""What tests of probsched and of code built on it use: hypothesis strategies for workloads,
schedules, traces and spaces (:mod:`.strategies`, with the schedule steps of :mod:`.steps`;
both re-exported here), and a lowering pass that injects real faults into generated code
(:mod:`.faults`, for the measurement path's tests).

Importing this package needs ``hypothesis`` (the ``test`` extra).
"""

from .steps import STEPS, apply_step, code_size
from .strategies import schedules, shapes, spaces, traces, workloads

__all__ = [
    "STEPS", "apply_step", "code_size", "shapes", "schedules", "spaces", "traces", "workloads",
]
