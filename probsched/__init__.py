"""probsched: schedules as probabilistic programs, compiled to LLVM and tuned by search."""

from . import measure as _measure_package  # noqa: F401
from . import workloads

# isort: split
# Importing a subpackage binds its name on this package: the measure package is loaded
# above, so that ``measure`` below stays the function (``ps.measure(sch)``), not the package.
from .driver.api import compile, measure, reference
from .driver.tuning import tune
from .errors import (
    CodegenError,
    DatabaseError,
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
    "CodegenError", "DatabaseError", "MeasureError", "ProbschedError", "Program",
    "SchedSyntaxError", "Schedule", "ScheduleError", "Trace", "Workload", "WorkloadError",
    "lower", "workloads",
    "Space", "load", "parse", "space", "tune",
]
