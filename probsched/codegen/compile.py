"""From a program to object code (``build``, run by builder workers) and to an in-process
callable (``compile_program``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..ir.program import Program
from . import target as T
from .llvm import LoweredKernel, lower_program
from .runtime import Kernel, KernelSignature, load_object


@dataclass(frozen=True)
class CompiledArtifact:
    """Object code plus what is needed to call it; plain data, cheap to send between
    processes."""

    object_code: bytes
    signature: KernelSignature
    compile_s: float


def build(what: Program | LoweredKernel, *, llvm_loop_heuristics: bool = False) -> CompiledArtifact:
    """Lower (if given a program), optimize and emit object code."""
    t0 = time.perf_counter()
    lowered = what if isinstance(what, LoweredKernel) else lower_program(what)
    mod = T.optimize(lowered.ir, llvm_loop_heuristics=llvm_loop_heuristics)
    obj = T.emit_object(mod)
    return CompiledArtifact(obj, lowered.signature, time.perf_counter() - t0)


def compile_program(
    program: Program, *, keep_text: bool = False, llvm_loop_heuristics: bool = False
) -> Kernel:
    """JIT ``program`` in this process. ``keep_text`` keeps the optimized LLVM IR
    (``kernel.ir``) and the assembly (``kernel.asm``) for inspection;
    ``llvm_loop_heuristics`` lets LLVM vectorize and unroll loops on its own judgement."""
    lowered = lower_program(program)
    mod = T.optimize(lowered.ir, llvm_loop_heuristics=llvm_loop_heuristics)
    obj = T.emit_object(mod)
    info = {}
    if keep_text:
        info = {"ir": str(mod), "asm": T.emit_assembly(mod)}
    return load_object(obj, lowered.signature, **info)
