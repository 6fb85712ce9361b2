"""The one error hierarchy of probsched.

Every error a user can provoke is a :class:`ProbschedError`; the CLI prints it as
``file:line:col: error: message`` (when it has a location) and exits 1. Anything else
escaping the CLI is an internal error (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a source file: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ProbschedError(Exception):
    """Base of every error probsched raises on bad input."""

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: error: {self.message}"


class WorkloadError(ProbschedError):
    """A compute definition is malformed (unknown tensor, bad shape, out-of-bounds access)."""


class InferenceError(WorkloadError):
    """An axis extent of a stage cannot be inferred. It names the ``stage``, the ``axes`` and
    whether they are ``reduction`` axes, so that each front end can say how to give them
    (Python: ``shape=`` / ``extents=``; .sched: a stage type or an ``over`` clause)."""

    def __init__(self, message: str, *, stage: str, axes: tuple[str, ...], reduction: bool):
        super().__init__(message)
        self.stage, self.axes, self.reduction = stage, axes, reduction


class SchedSyntaxError(ProbschedError):
    """A `.sched` file does not parse."""


class ScheduleError(ProbschedError):
    """A schedule primitive was called illegally; names the primitive and its arguments."""


class CodegenError(ProbschedError):
    """A program cannot be lowered to LLVM (unsupported construct)."""


class ResourceError(ProbschedError):
    """Something probsched needs is not there: memory for a reference, a device."""


class MeasureError(ProbschedError):
    """Building or running a candidate failed in a way the caller asked to be raised."""


class DatabaseError(ProbschedError):
    """A tuning database cannot be opened, read or written (damaged, read-only, not ours);
    the message names the file and the cause in one line."""


class DatasetError(ProbschedError):
    """A cost-model dataset (a pretrained set: ``.npz`` rows and its JSON sidecar) cannot be
    read or does not fit: missing files, damaged arrays, another feature layout."""


class ModelError(ProbschedError):
    """A whole model cannot be imported or compiled: an unsupported operator or attribute
    (the message names the node, the op and what is supported), a shape that is not static."""
