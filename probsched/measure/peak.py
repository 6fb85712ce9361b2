"""The machine's measured FMA peak: what a tuned kernel's GFLOP/s is a share of.

A microkernel of independent fused multiply-add chains on the target's widest vectors (enough
chains to cover the FMA latency on two ports, within the register file), JIT-compiled with
llvmlite and timed on one thread and on every core at once (Python threads calling it through
ctypes, which releases the GIL). Each FMA counts two flops per lane.

>>> p = fma_peak(seconds=0.05)
>>> p.all_cores_gflops > 0 and p.one_core_gflops > 0
True
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..codegen import machine
from ..target import CpuTarget, host
from .contention import MachineLock

ITERATIONS = 1 << 20


@dataclass(frozen=True)
class FmaPeak:
    """GFLOP/s of FMA on one core and on ``cores`` cores at once, for ``target``."""

    one_core_gflops: float
    all_cores_gflops: float
    cores: int
    target: str

    def share(self, gflops: float | None) -> float | None:
        """``gflops`` as a fraction of the all-core peak."""
        return None if gflops is None else gflops / self.all_cores_gflops


def _ir(target: CpuTarget, chains: int) -> str:
    lanes = target.vector_lanes()
    vec = f"<{lanes} x float>"

    def splat(value: str) -> str:
        return "<" + ", ".join(f"float {value}" for _ in range(lanes)) + ">"

    head = [f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})", "",
            "define float @fma_peak(i64 %n) #0 {", "entry:", "  br label %loop", "loop:",
            "  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]"]
    body = []
    for c in range(chains):
        start = splat(f"{1.0 + c / 64:e}")
        head.append(f"  %a{c} = phi {vec} [ {start}, %entry ], [ %b{c}, %loop ]")
        body.append(f"  %b{c} = call {vec} @llvm.fma.v{lanes}f32({vec} %a{c}, "
                    f"{vec} {splat('5.000000e-01')}, {vec} {splat('2.500000e-01')})")
    tail = ["  %i.next = add nuw nsw i64 %i, 1", "  %more = icmp slt i64 %i.next, %n",
            "  br i1 %more, label %loop, label %done", "done:"]
    acc = "%b0"
    for c in range(1, chains):
        tail.append(f"  %s{c} = fadd {vec} {acc}, %b{c}")
        acc = f"%s{c}"
    tail += [f"  %r = extractelement {vec} {acc}, i32 0", "  ret float %r", "}", "",
             f"attributes #0 = {{ nounwind {machine.function_attributes(target)} }}"]
    return "\n".join(head + body + tail) + "\n"


class _Kernel:
    """The compiled microkernel (its engine kept alive with it)."""

    def __init__(self, target: CpuTarget):
        self.chains = max(8, target.vector_registers - 4)  # accumulators + 2 constants fit
        self.lanes = target.vector_lanes()
        mod = machine.optimize(_ir(target, self.chains), target)
        self.engine = llvm.create_mcjit_compiler(mod, machine.new_jit_target_machine())
        self.engine.finalize_object()
        address = self.engine.get_function_address("fma_peak")
        self.fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(address)

    def flops(self, iterations: int) -> int:
        return 2 * self.lanes * self.chains * iterations


def _time_threads(kernel: _Kernel, threads: int, iterations: int) -> float:
    """Seconds for ``threads`` threads to each run ``iterations`` iterations, together."""
    barrier = threading.Barrier(threads + 1)

    def run() -> None:
        barrier.wait()
        kernel.fn(iterations)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - t


def fma_peak(target: CpuTarget | None = None, *, seconds: float = 0.3) -> FmaPeak:
    """The FMA peak of ``target``'s code on this host (its widest vectors): the fastest of
    runs of about ``seconds / 10`` each, after a warm-up (a peak is what the machine can do;
    a shared machine only ever makes a run slower)."""
    with MachineLock():
        return _fma_peak(target or host(), seconds)


@functools.cache
def _fma_peak(target: CpuTarget, seconds: float) -> FmaPeak:
    kernel = _Kernel(target)
    kernel.fn(ITERATIONS // 16)  # warm-up: clocks up, code paged in
    t = _time_threads(kernel, 1, ITERATIONS // 16)
    iterations = max(1 << 12, int(ITERATIONS // 16 * (seconds / 10) / max(t, 1e-9)))
    cores = target.cores
    rates = {}
    for threads in (1, cores):
        runs: list[float] = []
        t0 = time.perf_counter()
        while len(runs) < 5 or (time.perf_counter() - t0 < seconds / 2 and len(runs) < 50):
            runs.append(_time_threads(kernel, threads, iterations))
        rates[threads] = kernel.flops(iterations) * threads / min(runs) / 1e9
    return FmaPeak(rates[1], rates[cores], cores, target.key)
