"""CUDA targets: what code for an NVIDIA GPU is built for, read from a device or named.

A :class:`CudaTarget` is plain data, like :class:`~.cpu.CpuTarget`: the compute capability
that the NVPTX backend compiles for and what the schedule space needs to know of the device
(warp size, threads and shared memory per block, registers, SM count). :func:`cuda_target`
names a device description (``"sm_90"``: an H100/H200 class device), so PTX can be generated
and checked with ``ptxas`` on a machine without a GPU; reading a real device
(:func:`probsched.measure.cuda.device_target`, which needs the ``cuda`` extra) gives the same
kind of value with the device's own figures.

>>> t = cuda_target("sm_90")
>>> t.arch, t.warp_size, t.max_threads_per_block
('sm_90', 32, 1024)
>>> t.key
'nvptx64-nvidia-cuda arch=sm_90 sms=132'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ProbschedError


@dataclass(frozen=True)
class CudaTarget:
    """Code for one kind of NVIDIA GPU. Shared memory: ``shared_bytes_per_block`` without
    opting in (static ``__shared__`` arrays are limited to it), ``shared_bytes_optin`` with
    the dynamic-shared-memory attribute set at launch."""

    arch: str  # "sm_90": the compute capability as LLVM's CPU name for NVPTX
    ptx_features: str  # "+ptx80": the PTX ISA version LLVM emits
    name: str  # the device's name ("NVIDIA H200"), or the description's
    sm_count: int
    warp_size: int
    max_threads_per_block: int
    max_block_dims: tuple[int, int, int]
    max_grid_dims: tuple[int, int, int]
    registers_per_block: int
    registers_per_thread: int  # the most one thread may have (255 on sm_70 and later)
    shared_bytes_per_block: int
    shared_bytes_optin: int
    shared_bytes_per_sm: int
    l2_bytes: int
    clock_khz: int  # the SM clock's maximum

    kind: ClassVar[str] = "cuda"
    triple: ClassVar[str] = "nvptx64-nvidia-cuda"

    def __repr__(self) -> str:
        return f"CudaTarget({self.key!r})"

    @property
    def compute_capability(self) -> tuple[int, int]:
        """``(9, 0)`` for ``sm_90``."""
        digits = self.arch.removeprefix("sm_").rstrip("a")
        return int(digits[:-1]), int(digits[-1])

    @property
    def key(self) -> str:
        """What records of this target are stored under: equal for devices that run the same
        code at the same scale."""
        return f"{self.triple} arch={self.arch} sms={self.sm_count}"

    def describe(self) -> str:
        return (f"{self.name} ({self.arch}), {self.sm_count} SMs, warp {self.warp_size}, "
                f"{self.max_threads_per_block} threads and "
                f"{self.shared_bytes_optin // 1024} KB shared memory per block")

    def peak_fp32_flops(self) -> float:
        """FP32 FMA peak from the clock: 128 FP32 lanes per SM (sm_80 and later), 2 flops
        each (a figure to compare with, not a measurement)."""
        return self.sm_count * 128 * 2 * self.clock_khz * 1e3


# Device descriptions by compute capability, for building without a device. Figures of the
# data-center parts (H100/H200 SXM for sm_90, A100 for sm_80), from NVIDIA's tuning guides.
_NAMED = {
    "sm_90": CudaTarget(
        arch="sm_90", ptx_features="+ptx80", name="sm_90 (H100/H200 class)", sm_count=132,
        warp_size=32, max_threads_per_block=1024, max_block_dims=(1024, 1024, 64),
        max_grid_dims=(2**31 - 1, 65535, 65535), registers_per_block=65536,
        registers_per_thread=255, shared_bytes_per_block=48 * 1024,
        shared_bytes_optin=227 * 1024, shared_bytes_per_sm=228 * 1024, l2_bytes=60 * 2**20,
        clock_khz=1_980_000),
    "sm_80": CudaTarget(
        arch="sm_80", ptx_features="+ptx70", name="sm_80 (A100 class)", sm_count=108,
        warp_size=32, max_threads_per_block=1024, max_block_dims=(1024, 1024, 64),
        max_grid_dims=(2**31 - 1, 65535, 65535), registers_per_block=65536,
        registers_per_thread=255, shared_bytes_per_block=48 * 1024,
        shared_bytes_optin=163 * 1024, shared_bytes_per_sm=164 * 1024, l2_bytes=40 * 2**20,
        clock_khz=1_410_000),
}


def cuda_target(name: str = "sm_90") -> CudaTarget:
    """A named device description (``"sm_90"``, ``"sm_80"``; ``"cuda"`` is ``"sm_90"``)."""
    key = "sm_90" if name in ("cuda", "") else name
    if key not in _NAMED:
        raise ProbschedError(f"unknown CUDA target {name!r}; known: {', '.join(_NAMED)} (or "
                             "read a device with probsched.measure.cuda.device_target())")
    return _NAMED[key]
