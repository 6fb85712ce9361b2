"""From a program to object code (``build``, run by builder workers) and to an in-process
callable (``compile_program``), for a target (the host when none is given)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import CodegenError
from ..ir.program import Program
from ..target import CpuTarget, Target, resolve
from . import machine as M
from .llvm import LoweredKernel, lower_program
from .passes import PASSES, Pass
from .runtime import Kernel, KernelSignature, load_object


@dataclass(frozen=True)
class CompiledArtifact:
    """Object code plus what is needed to call it; plain data, cheap to send between
    processes."""

    object_code: bytes
    signature: KernelSignature
    compile_s: float
    target: CpuTarget | None = None


def cpu(target: Target | str | None) -> CpuTarget:
    """The CPU target to build for (codegen here emits CPU code only)."""
    t = resolve(target)
    if not isinstance(t, CpuTarget):
        raise CodegenError(f"the LLVM CPU backend cannot build for {t.describe()}")
    return t


def build(what: Program | LoweredKernel, *, target: Target | str | None = None,
          llvm_loop_heuristics: bool = False,
          passes: tuple[Pass, ...] = PASSES) -> CompiledArtifact:
    """Lower (if given a program, through the lowering ``passes``), optimize and emit object
    code for ``target``."""
    t0 = time.perf_counter()
    t = cpu(target)
    lowered = what if isinstance(what, LoweredKernel) else lower_program(what, t, passes=passes)
    mod = M.optimize(lowered.ir, t, llvm_loop_heuristics=llvm_loop_heuristics)
    obj = M.emit_object(mod, t)
    return CompiledArtifact(obj, lowered.signature, time.perf_counter() - t0, t)


def compile_program(program: Program, *, target: Target | str | None = None,
                    keep_text: bool = False, llvm_loop_heuristics: bool = False,
                    passes: tuple[Pass, ...] = PASSES) -> Kernel:
    """JIT ``program`` in this process, built for ``target`` (which must run here), through
    the lowering ``passes``. ``keep_text`` keeps the optimized LLVM IR (``kernel.ir``) and
    the assembly (``kernel.asm``) for inspection; ``llvm_loop_heuristics`` lets LLVM
    vectorize and unroll loops on its own judgement."""
    t = cpu(target)
    lowered = lower_program(program, t, passes=passes)
    mod = M.optimize(lowered.ir, t, llvm_loop_heuristics=llvm_loop_heuristics)
    obj = M.emit_object(mod, t)
    info = {}
    if keep_text:
        info = {"ir": str(mod), "asm": M.emit_assembly(mod, t)}
    return load_object(obj, lowered.signature, target=t, **info)
