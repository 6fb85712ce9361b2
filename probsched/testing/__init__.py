"""What tests of probsched and of code built on it use: hypothesis strategies for workloads,
schedules, traces and spaces (:mod:`.strategies`, re-exported here), and lowering passes that
inject real faults into generated code (:mod:`.faults`, for the measurement path's tests).

Importing this package needs ``hypothesis`` (the ``test`` extra).
"""

from .strategies import (
    STEPS,
    apply_step,
    code_size,
    schedules,
    shapes,
    spaces,
    traces,
    workloads,
)

__all__ = [
    "STEPS", "apply_step", "code_size", "shapes", "schedules", "spaces", "traces", "workloads",
]
