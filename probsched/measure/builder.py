"""The builder: compiles candidates to object code (a CPU target) or to PTX and a cubin (a
cuda target: :func:`probsched.codegen.nvptx.build_cuda`, ``ptxas`` included), in parallel, in
worker processes.

A candidate that fails to compile (an exception, a crash of LLVM, a compile that takes longer
than ``timeout_s``) becomes a :class:`BuildResult` with ``error`` set; the others are not
disturbed. Results come back in the order of the items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ..codegen.compile import CompiledArtifact, build
from ..codegen.gpu_kernel import GpuKernel
from ..codegen.intrinsics import Intrinsic, register
from ..codegen.llvm import LoweredKernel
from ..codegen.passes import PASSES, Pass
from ..ir.program import Program
from ..target import CpuTarget, CudaTarget, Target, resolve
from .contention import MachineLock
from .worker import Reply, Worker, wait_any


@dataclass(frozen=True)
class BuildResult:
    """Object code, or why there is none (``error_kind``: "error", "crash" or "timeout")."""

    artifact: CompiledArtifact | GpuKernel | None
    error: str | None = None
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None


class Builder:
    """A pool of ``workers`` compile processes building for ``target`` (the host when None).

    ``timeout_s`` bounds one compile; ``recycle_after`` compiles, a worker is replaced by a
    fresh process (llvmlite leaks ~137 KB per optimized module). ``passes``: lowering passes
    run after the standard ones (:data:`probsched.codegen.passes.PASSES`) on every program;
    they travel with each request, so their functions must be importable module-level ones
    (tests inject faults this way: :mod:`probsched.testing.faults`). ``intrinsics``: the
    :class:`~probsched.codegen.intrinsics.Intrinsic` objects ``tensorize`` annotations may
    name, registered in each compile process (module-level functions too).
    """

    def __init__(self, workers: int = 2, timeout_s: float = 30.0, recycle_after: int = 200, *,
                 target: Target | str | None = None, passes: tuple[Pass, ...] = (),
                 intrinsics: tuple[Intrinsic, ...] = ()):
        if workers < 1:
            raise ValueError(f"Builder: workers must be >= 1, got {workers}")
        t = resolve(target)
        if not isinstance(t, CpuTarget | CudaTarget):
            raise ValueError(f"Builder: cannot build for {t.describe()}")
        self.target: CpuTarget | CudaTarget = t
        self.lock = MachineLock()
        self.passes: tuple[Pass, ...] = PASSES + tuple(passes)
        self.intrinsics = tuple(intrinsics)
        self.timeout_s = timeout_s
        self.pool = tuple(Worker(recycle_after=recycle_after, name=f"probsched-build-{i}")
                          for i in range(workers))

    def build(self, item: Program | LoweredKernel) -> BuildResult:
        return self.build_many([item])[0]

    def build_many(self, items: Iterable[Program | LoweredKernel]) -> list[BuildResult]:
        """Compile every item, as many at a time as there are workers, holding the machine's
        measurement lock (compiles beside another tuner's timed runs would slow them)."""
        items = list(items)
        results: list[BuildResult | None] = [None] * len(items)
        todo = deque(enumerate(items))
        running: dict[Worker, int] = {}
        try:
            with self.lock:
                self._run(todo, running, results)
        except BaseException:  # Ctrl-C: don't leave compiles running
            for w in running:
                w.cancel()
            raise
        done = [r for r in results if r is not None]
        assert len(done) == len(results)  # _run gave every item its result
        return done

    def _run(self, todo: deque, running: dict[Worker, int], results: list) -> None:
        while todo or running:
            for w in self.pool:
                while w not in running and todo:
                    i, item = todo.popleft()
                    if not isinstance(item, Program | LoweredKernel):
                        results[i] = BuildResult(None, f"cannot build a {type(item).__name__}; "
                                                 "expected a Program or LoweredKernel", "error")
                        continue
                    w.submit(_build, item, self.target, self.passes, self.intrinsics,
                             timeout_s=self.timeout_s)
                    running[w] = i
            wait_any(list(running))
            for w in list(running):
                reply = w.poll()
                if reply is not None:
                    results[running.pop(w)] = _result(reply)

    def close(self) -> None:
        for w in self.pool:
            w.close()

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _build(item: Program | LoweredKernel, target: CpuTarget | CudaTarget,
           passes: tuple[Pass, ...], intrinsics: tuple[Intrinsic, ...] = ()
           ) -> CompiledArtifact | GpuKernel:
    for intrinsic in intrinsics:
        register(intrinsic)
    if isinstance(target, CudaTarget):
        from ..codegen.nvptx import build_cuda

        if isinstance(item, LoweredKernel):
            raise TypeError("a lowered CPU kernel cannot be built for a cuda target")
        return build_cuda(item, target, passes=passes)
    return build(item, target=target, passes=passes)


def _result(reply: Reply) -> BuildResult:
    if reply.ok:
        return BuildResult(reply.value)
    return BuildResult(None, reply.error, reply.kind)
