"""probsched: schedules as probabilistic programs, compiled to LLVM and tuned by search."""

from . import workloads
from .api import compile, measure, reference
from .errors import (
    CodegenError,
    MeasureError,
    ProbschedError,
    SchedSyntaxError,
    ScheduleError,
    WorkloadError,
)
from .ir import Program, Workload, lower
from .lang import Space, load, parse, space
from .schedule import Schedule, Trace

__all__ = [
    "compile", "measure", "reference",
    "CodegenError", "MeasureError", "ProbschedError", "Program", "SchedSyntaxError",
    "Schedule", "ScheduleError", "Trace", "Workload", "WorkloadError", "lower", "workloads",
    "Space", "load", "parse", "space",
]
