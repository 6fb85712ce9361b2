"""Lowering passes: named Program -> Program rewrites, applied top to bottom before emission.

Emission (:mod:`.llvm`) then turns the rewritten program into LLVM IR; what a pass can say in
the Program it says there, so the program after the passes (:func:`apply_passes`) is the one
to read when the generated code surprises. The standard list, :data:`PASSES`:

1. ``hoist_reduction_inits``: every reduction's init becomes a block of its own before the
   outermost loop where that copies no loop (:func:`probsched.ir.reduction.init_hoist_loop`),
   so the update loops run without the first-iteration test. The move is the one the
   schedule's ``decompose_reduction`` makes (:func:`probsched.ir.reduction.decompose_init`);
   a reduction with no such loop keeps its init, and emission tests for the first iteration.

Callers may give passes of their own (``passes=`` of :func:`.llvm.lower_program`,
:func:`.compile.build` and :func:`.compile.compile_program`), usually ``PASSES`` and more.

>>> from probsched.ir import lower
>>> from probsched.workloads import gmm
>>> print(apply_passes(lower(gmm(b=1, n=2, m=3, k=4))))
program gmm(A: float32[1, 2, 4], B: float32[1, 4, 3]) -> C: float32[1, 2, 3]
  for b in range(1):
    for i in range(2):
      for j in range(3):
        block C_init(b=b, i=i, j=j):
          C[b, i, j] = 0.0
        for k in range(4):
          block C(b=b, i=i, j=j; sum k=k):
            C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir.program import Program
from ..ir.reduction import decompose_init, init_hoist_loop

Pass = tuple[str, Callable[[Program], Program]]
"""A lowering pass: its name and the function (module-level, so that it pickles by reference
into builder processes)."""


def hoist_reduction_inits(program: Program) -> Program:
    """Each reduction's init as a block of its own before its :func:`init_hoist_loop`."""
    for name in [b.name for b in program.blocks() if b.init is not None]:
        loop = init_hoist_loop(program, name)
        if loop is not None:
            program, _ = decompose_init(program, name, loop)
    return program


PASSES: tuple[Pass, ...] = (
    ("hoist_reduction_inits", hoist_reduction_inits),
)
"""The standard lowering passes, in the order they run."""


def apply_passes(program: Program, passes: tuple[Pass, ...] = PASSES) -> Program:
    """``program`` after ``passes``, top to bottom: what emission sees."""
    for _, run in passes:
        program = run(program)
    return program
