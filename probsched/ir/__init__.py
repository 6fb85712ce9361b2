"""What a tensor program is: workloads (compute definitions), programs (loop nests), the
printer and the numpy reference."""

from . import printer  # noqa: F401  (gives the nodes their text forms)
from .compute import Stage, Tensor, Workload, WorkloadBuilder, axes
from .program import Block, Buffer, IterVar, Loop, LoopKind, Program, Scope, Store, lower

__all__ = [
    "Block",
    "Buffer",
    "IterVar",
    "Loop",
    "LoopKind",
    "Program",
    "Scope",
    "Stage",
    "Store",
    "Tensor",
    "Workload",
    "WorkloadBuilder",
    "axes",
    "lower",
]
