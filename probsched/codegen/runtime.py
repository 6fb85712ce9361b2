"""Loading compiled kernels and calling them on numpy arrays.

A kernel is ``void entry(ptr in0, ..., ptr out0, ...)`` over C-contiguous arrays. Object code
(from the builder) is loaded into an MCJIT engine of its own (MCJIT owns its target machine);
libgomp is loaded first, because MCJIT resolves a missing symbol to address 0 and the call
would crash.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass

import llvmlite.binding as llvm
import numpy as np

from ..errors import CodegenError, ProbschedError
from ..target import CpuTarget, host
from . import machine as M

NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int32": np.int32, "int64": np.int64}


@dataclass(frozen=True)
class ArgSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    output: bool


@dataclass(frozen=True)
class KernelSignature:
    entry: str
    args: tuple[ArgSpec, ...]

    @property
    def inputs(self) -> tuple[ArgSpec, ...]:
        return tuple(a for a in self.args if not a.output)

    @property
    def outputs(self) -> tuple[ArgSpec, ...]:
        return tuple(a for a in self.args if a.output)


@functools.cache
def load_openmp() -> str:
    """Make libgomp's symbols visible to JIT code; returns the library loaded."""
    for path in _openmp_candidates():
        try:
            llvm.load_library_permanently(path)
            return path
        except RuntimeError:
            continue
    raise CodegenError("cannot load libgomp (install gcc's libgomp1) for parallel loops")


def _openmp_candidates():
    yield from filter(None, [ctypes.util.find_library("gomp"), "libgomp.so.1"])
    # scikit-learn's wheel bundles a copy: a fallback where the system has none (importing
    # sklearn is slow, so only when needed).
    import sklearn

    root = os.path.dirname(os.path.dirname(sklearn.__file__))
    yield from glob.glob(os.path.join(root, "scikit_learn.libs", "libgomp*.so*"))


class Kernel:
    """A callable compiled kernel. ``kernel(*inputs)`` returns a tuple of new output arrays;
    ``kernel.run(*arrays)`` calls on all buffers (inputs then outputs) without checks.
    ``code`` is what keeps the machine code at ``address`` alive (a JIT engine, a loaded
    shared library)."""

    def __init__(
        self,
        code: object,
        address: int,
        signature: KernelSignature,
        *,
        ir: str | None = None,
        asm: str | None = None,
    ):
        self._code = code
        self.signature = signature
        self.ir = ir
        self.asm = asm
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * len(signature.args)))
        self._fn = proto(address)

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        specs = self.signature.inputs
        if len(inputs) != len(specs):
            raise ProbschedError(f"kernel takes {len(specs)} inputs, got {len(inputs)}")
        arrays = [coerce(x, s) for x, s in zip(inputs, specs, strict=True)]
        outs = [np.empty(s.shape, NP_DTYPES[s.dtype]) for s in self.signature.outputs]
        self.run(*arrays, *outs)
        return tuple(outs)

    def run(self, *arrays: np.ndarray) -> None:
        self._fn(*[a.ctypes.data for a in arrays])

    def bind(self, *arrays: np.ndarray):
        """A no-argument call of the kernel on ``arrays`` (inputs then outputs), for timing:
        reading ``a.ctypes.data`` costs ~10 us a call, which would distort short kernels.
        The caller keeps the arrays alive; the call keeps the kernel's code alive."""
        fn, pointers = self._fn, [a.ctypes.data for a in arrays]

        def call(_code=self):  # a bound call outliving its Kernel would jump into freed code
            return fn(*pointers)

        return call


def coerce(x, spec: ArgSpec) -> np.ndarray:
    """``x`` as a C-contiguous array of ``spec``'s dtype; refused (a ``ProbschedError``
    naming the input) when its shape differs or its values would change kind (floats into
    an integer input, complex into a float one, text)."""
    want = np.dtype(NP_DTYPES[spec.dtype])
    have = np.asarray(x)
    if not np.can_cast(have.dtype, want, casting="same_kind"):
        raise ProbschedError(f"input {spec.name}: expected {spec.dtype} values, got an array "
                             f"of {have.dtype}")
    a = np.ascontiguousarray(have, dtype=want)
    if a.shape != spec.shape:
        raise ProbschedError(f"input {spec.name}: expected shape {spec.shape}, got {a.shape}")
    return a


def load_object(obj: bytes, signature: KernelSignature, *, target: CpuTarget | None = None,
                **info) -> Kernel:
    """Load object code made by :func:`probsched.codegen.machine.emit_object` (for
    ``target``: refused when this host lacks a feature its code needs)."""
    if target is not None:
        missing = target.missing_on(host())
        if missing:
            raise CodegenError(f"code built for {target.cpu} needs {', '.join(missing)}, "
                               f"which this host ({host().cpu}) lacks")
    load_openmp()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), M.new_jit_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    address = engine.get_function_address(signature.entry)
    if not address:
        raise CodegenError(f"kernel entry {signature.entry!r} not found in compiled code")
    return Kernel(engine, address, signature, **info)


def all_arrays(kernel: Kernel, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Inputs (coerced) followed by freshly allocated outputs, for ``Kernel.run``."""
    sig = kernel.signature
    arrays = [coerce(x, s) for x, s in zip(inputs, sig.inputs, strict=True)]
    return arrays + [np.empty(s.shape, NP_DTYPES[s.dtype]) for s in sig.outputs]
