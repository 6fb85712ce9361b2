"""A compiled CUDA kernel as plain data: what the NVPTX code generator hands the GPU runner.

It travels between processes (the builder pool makes it, the runner worker loads it), so it
holds text, bytes and numbers only. The launch shape is fixed by the schedule (the loops bound
to ``blockIdx.*`` and ``threadIdx.*``); the arguments are the workload's tensors in
``signature`` order (inputs, then outputs), each a device pointer to a dense row-major buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..target.cuda import CudaTarget
from .runtime import ArgSpec, KernelSignature


@dataclass(frozen=True)
class PtxasReport:
    """What ``ptxas -v`` says of a kernel: a static filter and features before measuring."""

    registers: int
    spill_store_bytes: int
    spill_load_bytes: int
    static_shared_bytes: int
    stack_bytes: int


@dataclass(frozen=True)
class KernelLaunch:
    """One more kernel of a program launched after the first: its entry and launch shape."""

    entry: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    dynamic_shared_bytes: int


@dataclass(frozen=True)
class GpuKernel:
    """PTX (and the cubin ``ptxas`` made of it, when it ran) for one entry, with its launch;
    a program of several loop nests has more kernels (``more``, launched after it in order)
    and a ``workspace``: its global intermediates, device buffers every kernel takes after
    the outputs (allocated by the runner)."""

    entry: str  # the kernel's name in the PTX
    ptx: str
    cubin: bytes | None
    grid: tuple[int, int, int]  # blocks in x, y, z
    block: tuple[int, int, int]  # threads per block in x, y, z
    dynamic_shared_bytes: int  # set with the opt-in attribute when above 48 KB
    signature: KernelSignature
    target: CudaTarget
    compile_s: float
    ptxas: PtxasReport | None = None
    more: tuple[KernelLaunch, ...] = ()
    workspace: tuple[ArgSpec, ...] = ()

    @property
    def threads_per_block(self) -> int:
        x, y, z = self.block
        return x * y * z

    @property
    def launches(self) -> tuple[KernelLaunch, ...]:
        """Every kernel, in launch order."""
        first = KernelLaunch(self.entry, self.grid, self.block, self.dynamic_shared_bytes)
        return (first, *self.more)
