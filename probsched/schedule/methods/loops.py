"""Loop primitives: split, fuse, reorder, the loop kinds and annotations."""

from __future__ import annotations

from collections.abc import Sequence

from ...ir.program import LoopKind
from ...target import CudaTarget
from ..primitives import gpu, loops
from ..registry import instruction
from ..state import MAX_LOOP_DEPTH, ScheduleState
from ..trace import RV


class LoopMethods(ScheduleState):
    """Primitives on loops (``primitives/loops.py`` does the work)."""

    def _kind(self, prim: str, loop: RV, kind: LoopKind) -> None:
        var = self._loop(loop, prim, (loop,), 1)
        self.program = self._apply(prim, (loop,), loops.set_kind, var, kind)
        self._record(prim, (loop,), ())

    @instruction("loop factors", returns="loops")
    def split(self, loop: RV, factors: Sequence[int | RV | None]) -> list[RV]:
        """Split ``loop`` into ``len(factors)`` nested loops; one factor may be None (inferred).
        Factors that do not divide the extent give a guarded partial last tile.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=10, m=4, k=4))
        >>> _, i, _, _ = sch.get_loops(sch.get_block("C"))
        >>> _ = sch.split(i, [None, 4])
        >>> print(sch.program)
        program gmm(A: float32[1, 10, 4], B: float32[1, 4, 4]) -> C: float32[1, 10, 4]
          for b in range(1):
            for i_0 in range(3):
              for i_1 in range(4):
                for j in range(4):
                  for k in range(4):
                    block C(b=b, i=i_0 * 4 + i_1, j=j; sum k=k):
                      where i_0 * 4 + i_1 < 10
                      init C[b, i, j] = 0.0
                      C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        """
        args = (loop, list(factors) if isinstance(factors, list | tuple) else factors)
        if not isinstance(factors, list | tuple):
            raise self._fail("split", args, "argument 2, 'factors': expected a list")
        if len(factors) > MAX_LOOP_DEPTH:
            raise self._fail("split", args, f"argument 2, 'factors': {len(factors)} factors, "
                             f"more than {MAX_LOOP_DEPTH} (the limit: a loop nest holds that many)")
        var = self._loop(loop, "split", args, 1)
        values = [self._int(f, "split", args, "argument 2, 'factors'") for f in factors]
        program, names = self._apply("split", args, loops.split, var, values)
        self.program = program
        rvs = [self._rv("l", n) for n in names]
        self._record("split", (loop, tuple(factors)), tuple(rvs))
        return rvs

    @instruction("loop", returns="loop")
    def fuse(self, *loop_rvs: RV) -> RV:
        """Fuse directly nested loops (outermost first) into one loop."""
        vars_ = [self._loop(lp, "fuse", loop_rvs, k + 1) for k, lp in enumerate(loop_rvs)]
        program, name = self._apply("fuse", loop_rvs, loops.fuse, vars_)
        self.program = program
        rv = self._rv("l", name)
        self._record("fuse", loop_rvs, (rv,))
        return rv

    @instruction("loop")
    def reorder(self, *loop_rvs: RV) -> None:
        """Put the given loops (all in one nest) in this order, in the places they occupy."""
        vars_ = [self._loop(lp, "reorder", loop_rvs, k + 1) for k, lp in enumerate(loop_rvs)]
        self.program = self._apply("reorder", loop_rvs, loops.reorder, vars_)
        self._record("reorder", loop_rvs, ())

    @instruction("loop")
    def parallel(self, loop: RV) -> None:
        """Run ``loop``'s iterations on all threads (libgomp)."""
        self._kind("parallel", loop, LoopKind.PARALLEL)

    @instruction("loop")
    def vectorize(self, loop: RV) -> None:
        """Run ``loop`` as vector instructions (its extent is the vector width)."""
        self._kind("vectorize", loop, LoopKind.VECTORIZED)

    @instruction("loop")
    def unroll(self, loop: RV) -> None:
        """Unroll ``loop`` completely in the generated code."""
        self._kind("unroll", loop, LoopKind.UNROLLED)

    @instruction("loop str value")
    def annotate(self, loop: RV, key: str, value: int | float | str | RV) -> None:
        """Attach ``key = value`` to ``loop`` (e.g. ``unroll_max_step``)."""
        args = (loop, key, value)
        var = self._loop(loop, "annotate", args, 1)
        if not isinstance(key, str) or not key.isidentifier():
            raise self._fail("annotate", args, "argument 2, 'key': expected a name")
        v = self._int(value, "annotate", args, "argument 3") if isinstance(value, RV) else value
        if not isinstance(v, int | float | str) or isinstance(v, bool):
            raise self._fail("annotate", args, "argument 3, 'value': expected a number or text")
        self.program = self._apply("annotate", args, loops.annotate, var, key, v)
        self._record("annotate", args, ())

    @instruction("loop str")
    def bind(self, loop: RV, axis: str) -> None:
        """Bind ``loop`` to a GPU axis: "blockIdx.x|y|z" (its iterations run on distinct
        thread blocks), "threadIdx.x|y|z" (on distinct threads of a block) or "vthread"
        (interleaved in each thread); the target must be cuda. The loop must be spatial and
        each iteration write its own elements; an axis is bound once on a path from the
        root, blockIdx loops outermost; the launch must fit the device (1,024 threads per
        block on sm_90).

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=4), target="cuda")
        >>> _, i, j, _ = sch.get_loops(sch.get_block("C"))
        >>> i0, i1 = sch.split(i, [None, 16])
        >>> sch.reorder(i0, j, i1)
        >>> sch.bind(i0, "blockIdx.x")
        >>> sch.bind(i1, "threadIdx.x")
        >>> print(sch.program)
        program gmm(A: float32[1, 64, 4], B: float32[1, 4, 64]) -> C: float32[1, 64, 64]
          for b in range(1):
            for i_0 in blockIdx.x(4):
              for j in range(64):
                for i_1 in threadIdx.x(16):
                  for k in range(4):
                    block C(b=b, i=i_0 * 16 + i_1, j=j; sum k=k):
                      init C[b, i, j] = 0.0
                      C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        """
        args = (loop, axis)
        var = self._loop(loop, "bind", args, 1)
        if not isinstance(self.target, CudaTarget):
            raise self._fail("bind", args, f"the target is not a GPU: {self.target.describe()} "
                             "(schedule for target='cuda')")
        t = self.target
        limits = gpu.LaunchLimits(t.max_threads_per_block, t.max_block_dims, t.max_grid_dims)
        program = self._apply("bind", args, gpu.bind, var, axis, limits)
        self._check_shared("bind", args, program)
        self.program = program
        self._record("bind", args, ())
