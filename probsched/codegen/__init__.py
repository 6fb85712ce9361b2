"""Program -> machine code: lowering passes (passes.py), LLVM IR text (llvm.py, exprs.py),
optimization and object code (machine.py), loading and calling kernels (runtime.py)."""

from .compile import CompiledArtifact, build, compile_program
from .llvm import LoweredKernel, lower_program
from .passes import PASSES, apply_passes
from .runtime import Kernel, KernelSignature, load_object

__all__ = [
    "CompiledArtifact",
    "Kernel",
    "KernelSignature",
    "LoweredKernel",
    "PASSES",
    "apply_passes",
    "build",
    "compile_program",
    "load_object",
    "lower_program",
]
