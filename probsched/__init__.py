"""probsched: schedules as probabilistic programs, compiled to LLVM and tuned by search."""

from . import workloads
from .errors import (
    CodegenError,
    MeasureError,
    ProbschedError,
    SchedSyntaxError,
    ScheduleError,
    WorkloadError,
)
from .ir import Program, Workload, lower

__all__ = [
    "CodegenError", "MeasureError", "ProbschedError", "Program", "SchedSyntaxError",
    "ScheduleError", "Workload", "WorkloadError", "lower", "workloads",
]
