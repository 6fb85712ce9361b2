"""Program -> machine code: LLVM IR text (llvm.py, exprs.py), optimization and object code
(target.py), loading and calling kernels (runtime.py)."""

from .compile import CompiledArtifact, build, compile_program
from .llvm import LoweredKernel, lower_program
from .runtime import Kernel, KernelSignature, load_object

__all__ = [
    "CompiledArtifact",
    "Kernel",
    "KernelSignature",
    "LoweredKernel",
    "build",
    "compile_program",
    "load_object",
    "lower_program",
]
