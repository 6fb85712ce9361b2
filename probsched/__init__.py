"""probsched: schedules as probabilistic programs, compiled to LLVM and tuned by search."""

import logging as _logging

from . import measure as _measure_package  # noqa: F401
from . import workloads

# isort: split
# Importing a subpackage binds its name on this package: the measure package is loaded
# above, so that ``measure`` below stays the function (``ps.measure(sch)``), not the package.
from .driver.api import compile, measure, reference
from .driver.dataset_cli import dataset
from .driver.export import export, load_kernel
from .driver.tuning import tune
from .errors import (
    CodegenError,
    DatabaseError,
    DatasetError,
    MeasureError,
    ModelError,
    ProbschedError,
    SchedSyntaxError,
    ScheduleError,
    WorkloadError,
)
from .ir import Program, Workload, lower
from .lang import Space, load, parse, space
from .network import load_onnx
from .schedule import Schedule, Trace

# What the tuner does is logged under "probsched"; the application decides where it goes.
_logging.getLogger("probsched").addHandler(_logging.NullHandler())

__all__ = [
    "compile", "measure", "reference", "export", "load_kernel", "dataset",
    "CodegenError", "DatabaseError", "DatasetError", "MeasureError", "ModelError",
    "ProbschedError", "Program",
    "SchedSyntaxError", "Schedule", "ScheduleError", "Trace", "Workload", "WorkloadError",
    "lower", "workloads",
    "Space", "load", "parse", "space", "tune", "load_onnx",
]
