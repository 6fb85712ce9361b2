"""One-call measurement: build in the builder's pool, then run in the runner.

Builds and runs never overlap: on a small machine a compile next to a timed run would disturb
the timing.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterable
from typing import Protocol

from ..codegen.compile import CompiledArtifact
from ..codegen.gpu_kernel import GpuKernel
from ..codegen.llvm import LoweredKernel
from ..ir.compute import Workload
from ..ir.program import Program
from ..target import CudaTarget, Target
from ..target import resolve as resolve_target
from .builder import Builder, BuildResult
from .cuda import CudaRunner
from .runner import Runner, RunResult

Buildable = Program | LoweredKernel | CompiledArtifact | GpuKernel


class AnyRunner(Protocol):
    """What checks and times built candidates: :class:`Runner`, :class:`CudaRunner`, or any
    runner with these methods (the Dask runner of :mod:`probsched.driver.dask_measure`)."""

    def run(self, artifact: CompiledArtifact | GpuKernel, workload: Workload, *, seed: int = 0,
            slow_s: float | None = None) -> RunResult: ...

    def close(self) -> None: ...


class AnyBuilder(Protocol):
    """What compiles candidates: :class:`Builder`, or any builder with this method (the Dask
    builder of :mod:`probsched.driver.dask_measure`); results in the order of the items."""

    def build_many(self, items: Iterable[Program | LoweredKernel]) -> list[BuildResult]: ...


def measure(what: Buildable, workload: Workload, *, seed: int = 0,
            builder: Builder | None = None, runner: AnyRunner | None = None,
            target: Target | str | None = None) -> RunResult:
    """Build (unless given an artifact), check and time one candidate of ``workload``. A
    builder (for ``target``, the host when None) or runner not given is made for this call
    and closed after it (a cuda target's: the GPU runner)."""
    return measure_many([what], workload, seed=seed, builder=builder, runner=runner,
                        target=target)[0]


def measure_many(items: Iterable[Buildable], workload: Workload, *, seed: int = 0,
                 builder: Builder | None = None, runner: AnyRunner | None = None,
                 target: Target | str | None = None) -> list[RunResult]:
    """:func:`measure` for many candidates: all are built (in parallel), then each is run."""
    items = list(items)
    with contextlib.ExitStack() as stack:
        built_already = (CompiledArtifact, GpuKernel)
        to_build = [x for x in items if not isinstance(x, built_already)]
        built: list[BuildResult] = []
        if to_build:
            if builder is None:
                builder = stack.enter_context(Builder(workers=min(2, len(to_build)),
                                                      target=target))
            built = builder.build_many(to_build)
        if runner is None:
            gpu = isinstance(resolve_target(target), CudaTarget)
            runner = CudaRunner() if gpu else Runner()
            stack.callback(runner.close)
        it = iter(built)
        results = []
        for x in items:
            b = BuildResult(x) if isinstance(x, built_already) else next(it)
            if not b.ok:
                results.append(RunResult.failed("build", b.error or "build failed"))
            else:
                assert b.artifact is not None  # an ok build has its artifact
                results.append(runner.run(b.artifact, workload, seed=seed))
        return results


def runner_overhead(workload: Workload, artifact: CompiledArtifact | GpuKernel, runner: Runner, *,
                    calls: int = 5, seed: int = 0) -> dict:
    """What ``runner.run`` costs beyond the kernel's own runs: wall time of the call minus
    the time spent in the kernel (correctness, warm-up and timed runs). Medians over
    ``calls`` calls, after one call that prepares the workload (reported as
    ``first_contact_s``). A benchmark helper: no test asserts on these numbers."""
    t = time.perf_counter()
    first = runner.run(artifact, workload, seed=seed)
    first_contact_s = time.perf_counter() - t
    if not first.ok:
        raise RuntimeError(f"runner_overhead: the candidate failed: {first.error}")
    walls, kernels, overheads, repeats = [], [], [], []
    for _ in range(calls):
        t = time.perf_counter()
        r = runner.run(artifact, workload, seed=seed)
        wall = time.perf_counter() - t
        kernel = r.kernel_s
        walls.append(wall)
        kernels.append(kernel)
        overheads.append(wall - kernel)
        repeats.append(len(r.runs_s))
    return {
        "workload": workload.name,
        "overhead_s": statistics.median(overheads),
        "overhead_min_s": min(overheads),
        "wall_s": statistics.median(walls),
        "kernel_s": statistics.median(kernels),
        "latency_s": first.latency_s,
        "repeats": statistics.median(repeats),
        "first_contact_s": first_contact_s,
    }

