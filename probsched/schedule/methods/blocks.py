"""Block primitives: caching (cache_read, cache_write), where a block is computed
(compute_at, reverse_compute_at) and inlining."""

from __future__ import annotations

from ..primitives import caching, inlining, location
from ..registry import instruction
from ..state import INLINE, ROOT, ScheduleState
from ..trace import RV


class BlockMethods(ScheduleState):
    """Primitives that add, move or remove blocks."""

    @instruction("block buffer str", returns="block")
    def cache_read(self, block: RV, buffer: str | int, scope: str = "local") -> RV:
        """Copy the buffer ``block`` reads (by name, or by index among the buffers it reads in
        order of appearance) into a new ``scope`` buffer ("local", "global", or on a GPU
        "shared") of the same shape, in a nest placed before ``block``'s; ``block`` (only
        it) reads the copy. Returns the copying block, named after the new buffer;
        compute_at moves it next to its use (a shared copy computed under thread loops
        covers what all the threads of the block read).

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> a = sch.cache_read(sch.get_block("C"), "A", "local")
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local A_local: float32[1, 2, 3]
          for v0 in range(1):
            for v1 in range(2):
              for v2 in range(3):
                block A_local(v0=v0, v1=v1, v2=v2):
                  A_local[v0, v1, v2] = A[v0, v1, v2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C[b, i, j] = 0.0
                    C[b, i, j] = C[b, i, j] + A_local[b, i, k] * B[b, k, j]
        """
        args = (block, buffer, scope)
        name = self._block(block, "cache_read", args, 1)
        self._scope_fits("cache_read", args, scope)
        program, new = self._apply("cache_read", args, caching.cache_read, name, buffer, scope)
        self.program = program
        rv = self._rv("b", new)
        self._record("cache_read", (block, buffer, scope), (rv,))
        return rv

    @instruction("block str", returns="block")
    def cache_write(self, block: RV, scope: str = "local") -> RV:
        """``block`` writes (init and body) a new ``scope`` buffer ("local", "global", or on
        a GPU "shared") of the same shape; a new write-back block ``<block>_wb``, in a nest
        placed after ``block``'s, copies it to the original. Returns the write-back block;
        reverse_compute_at moves it next to the computation.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> wb = sch.cache_write(sch.get_block("C"), "local")
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local C_local: float32[1, 2, 2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C_local[b, i, j] = 0.0
                    C_local[b, i, j] = C_local[b, i, j] + A[b, i, k] * B[b, k, j]
          for v0 in range(1):
            for v1 in range(2):
              for v2 in range(2):
                block C_wb(v0=v0, v1=v1, v2=v2):
                  C[v0, v1, v2] = C_local[v0, v1, v2]
        """
        args = (block, scope)
        name = self._block(block, "cache_write", args, 1)
        self._scope_fits("cache_write", args, scope)
        program, new = self._apply("cache_write", args, caching.cache_write, name, scope)
        self.program = program
        rv = self._rv("b", new)
        self._record("cache_write", (block, scope), (rv,))
        return rv

    @instruction("block str")
    def set_scope(self, block: RV, scope: str) -> None:
        """The intermediate ``block`` writes lives in ``scope``: "local" (a copy per thread;
        on a GPU a reduction whose loop is bound to threadIdx then reduces across the
        threads), "shared" (per GPU thread block) or "global".

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.sfm(n=2, m=3), target="cuda")
        >>> sch.set_scope(sch.get_block("M"), "local")
        >>> print(sch.program.buffer("M").scope)
        local
        """
        args = (block, scope)
        name = self._block(block, "set_scope", args, 1)
        self._scope_fits("set_scope", args, scope)
        self.program = self._apply("set_scope", args, caching.set_scope, name, scope)
        self._check_shared("set_scope", args, self.program)
        self._record("set_scope", args, ())

    @instruction("block int int int")
    def storage_align(self, block: RV, axis: int, factor: int, offset: int) -> None:
        """Pad the stride of ``axis`` of the shared buffer ``block`` writes up to ``offset``
        mod ``factor`` elements (negative axes count from the end), so that the rows of a
        shared tile fall in different memory banks; the last axis has no stride to pad.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=64), target="cuda")
        >>> a = sch.cache_read(sch.get_block("C"), "A", "shared")
        >>> sch.storage_align(a, -2, 32, 4)
        >>> sch.program.buffer("A_shared").strides
        (4352, 68, 1)
        """
        args = (block, axis, factor, offset)
        name = self._block(block, "storage_align", args, 1)
        ints = [self._int(v, "storage_align", args, f"argument {k + 2}, {what!r}")
                for k, (v, what) in enumerate(((axis, "axis"), (factor, "factor"),
                                               (offset, "offset")))]
        if None in ints:
            raise self._fail("storage_align", args, "axis, factor and offset are integers")
        self.program = self._apply("storage_align", args, caching.storage_align, name, *ints)
        self._check_shared("storage_align", args, self.program)
        self._record("storage_align", args, ())

    @instruction("block ints")
    def transform_layout(self, block: RV, order: list[int]) -> None:
        """Store the intermediate buffer ``block`` writes with its axes in ``order`` (new axis
        ``k`` is old axis ``order[k]``): its shape and every access permuted, nothing else
        changes. Before storage_align; after compute_at (which wants the copy's store in the
        order of its iteration variables).

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=64, m=64, k=32), target="cuda")
        >>> a = sch.cache_read(sch.get_block("C"), "A", "shared")
        >>> sch.transform_layout(a, [0, 2, 1])
        >>> sch.program.buffer("A_shared").shape
        (1, 32, 64)
        """
        args = (block, order)
        name = self._block(block, "transform_layout", args, 1)
        if not isinstance(order, list | tuple):
            raise self._fail("transform_layout", args, "order is a list of axes")
        axes = [self._int(v, "transform_layout", args, f"axis {k}") for k, v in enumerate(order)]
        if None in axes:
            raise self._fail("transform_layout", args, "the axes are integers")
        self.program = self._apply("transform_layout", args, caching.transform_layout, name,
                                   tuple(int(a) for a in axes if a is not None))
        self._record("transform_layout", args, ())

    @instruction("block loop")
    def compute_at(self, block: RV, loop: RV) -> None:
        """Move producer ``block`` (alone in its loop nest) to the start of ``loop``'s body,
        computing per iteration only the region its consumers under ``loop`` read: new
        loops ``ax<k>`` over that region, guarded where it may leave the buffer. Every
        consumer must be under ``loop``. A loop from ``sample_compute_location`` may be the
        root (no change) or inline (compute_inline).

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.c1d(l=4, ci=1, co=2, kernel=3, stride=1, pad=1))
        >>> print(sch.program)
        program c1d(X: float32[1, 4, 1], W: float32[3, 1, 2]) -> C: float32[1, 4, 2]
          global P: float32[1, 6, 1]
          for n in range(1):
            for l in range(6):
              for c in range(1):
                block P(n=n, l=l, c=c):
                  P[n, l, c] = select(l >= 1 and l < 5, X[n, l - 1, c], 0.0)
          for n_1 in range(1):
            for l_1 in range(4):
              for co in range(2):
                for rl in range(3):
                  for rc in range(1):
                    block C(n=n_1, l=l_1, co=co; sum rl=rl, rc=rc):
                      init C[n, l, co] = 0.0
                      C[n, l, co] = C[n, l, co] + P[n, l + rl, rc] * W[rl, rc, co]
        >>> _, l, _, _, _ = sch.get_loops(sch.get_block("C"))
        >>> sch.compute_at(sch.get_block("P"), l)
        >>> print(sch.program)
        program c1d(X: float32[1, 4, 1], W: float32[3, 1, 2]) -> C: float32[1, 4, 2]
          global P: float32[1, 6, 1]
          for n_1 in range(1):
            for l_1 in range(4):
              for ax0 in range(1):
                for ax1 in range(3):
                  for ax2 in range(1):
                    block P(n=n_1 + ax0, l=l_1 + ax1, c=ax2):
                      P[n, l, c] = select(l >= 1 and l < 5, X[n, l - 1, c], 0.0)
              for co in range(2):
                for rl in range(3):
                  for rc in range(1):
                    block C(n=n_1, l=l_1, co=co; sum rl=rl, rc=rc):
                      init C[n, l, co] = 0.0
                      C[n, l, co] = C[n, l, co] + P[n, l + rl, rc] * W[rl, rc, co]
        """
        args = (block, loop)
        if isinstance(loop, RV) and self._values.get(loop) == ROOT:
            self._block(block, "compute_at", args, 1)
            self._record("compute_at", args, ())
            return
        if isinstance(loop, RV) and self._values.get(loop) == INLINE:
            name = self._block(block, "compute_at", args, 1)
            self.program = self._apply("compute_at", args, inlining.compute_inline, name)
            self._record("compute_at", args, ())
            return
        name = self._block(block, "compute_at", args, 1)
        var = self._loop(loop, "compute_at", args, 2)
        program = self._apply("compute_at", args, location.compute_at, name, var)
        self._check_shared("compute_at", args, program)
        self.program = program
        self._record("compute_at", args, ())

    @instruction("block loop")
    def reverse_compute_at(self, block: RV, loop: RV) -> None:
        """Move consumer ``block`` (alone in its loop nest) to the end of ``loop``'s body,
        consuming per iteration only what the producers under ``loop`` wrote: new loops
        ``ax<k>`` over that region. ``block`` must read the produced buffer at its own
        iteration point (write-back blocks and elementwise epilogues do), and ``loop`` must
        not carry a producer's reduction.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=2, k=3))
        >>> c = sch.get_block("C")
        >>> wb = sch.cache_write(c, "local")
        >>> _, i, _, _ = sch.get_loops(c)
        >>> sch.reverse_compute_at(wb, i)
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 3], B: float32[1, 3, 2]) -> C: float32[1, 2, 2]
          local C_local: float32[1, 2, 2]
          for b in range(1):
            for i in range(2):
              for j in range(2):
                for k in range(3):
                  block C(b=b, i=i, j=j; sum k=k):
                    init C_local[b, i, j] = 0.0
                    C_local[b, i, j] = C_local[b, i, j] + A[b, i, k] * B[b, k, j]
              for ax0 in range(1):
                for ax1 in range(1):
                  for ax2 in range(2):
                    block C_wb(v0=b + ax0, v1=i + ax1, v2=ax2):
                      C[v0, v1, v2] = C_local[v0, v1, v2]
        """
        args = (block, loop)
        name = self._block(block, "reverse_compute_at", args, 1)
        var = self._loop(loop, "reverse_compute_at", args, 2)
        program = self._apply("reverse_compute_at", args, location.reverse_compute_at,
                              name, var)
        self._check_shared("reverse_compute_at", args, program)
        self.program = program
        self._record("reverse_compute_at", args, ())

    @instruction("block")
    def compute_inline(self, block: RV) -> None:
        """Replace every read of ``block``'s buffer by the block's expression (its iteration
        variables replaced by the read's indices); the block, the loops holding only it and
        its buffer disappear. ``block`` must be a non-reduction block, the only writer of an
        intermediate buffer, storing at its iteration variables (each once, in any order).

        >>> import probsched as ps
        >>> from probsched.ir.compute import WorkloadBuilder, axes
        >>> from probsched.ir.ops import maximum
        >>> wb = WorkloadBuilder("scale_relu")
        >>> A, (i, j) = wb.input("A", (2, 8)), axes("i j")
        >>> B = wb.compute("B", (i, j), A[i, j] * 2.0)
        >>> _ = wb.compute("C", (i, j), maximum(B[i, j], 0.0))
        >>> sch = ps.Schedule(wb.build())
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          global B: float32[2, 8]
          for i in range(2):
            for j in range(8):
              block B(i=i, j=j):
                B[i, j] = A[i, j] * 2.0
          for i_1 in range(2):
            for j_1 in range(8):
              block C(i=i_1, j=j_1):
                C[i, j] = max(B[i, j], 0.0)
        >>> sch.compute_inline(sch.get_block("B"))
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          for i_1 in range(2):
            for j_1 in range(8):
              block C(i=i_1, j=j_1):
                C[i, j] = max(A[i, j] * 2.0, 0.0)
        """
        name = self._block(block, "compute_inline", (block,), 1)
        self.program = self._apply("compute_inline", (block,), inlining.compute_inline, name)
        self._record("compute_inline", (block,), ())

    @instruction("block")
    def reverse_compute_inline(self, block: RV) -> None:
        """Fold elementwise consumer ``block`` into the block producing what it reads: the
        producer stores into ``block``'s buffer what ``block`` computes, its own value in
        place of the reads; ``block``, the loops holding only it and the intermediate buffer
        disappear. ``block`` must read that buffer at its iteration variables (each once, in
        any order) over the producer's domain; the producer must not be a reduction (use
        reverse_compute_at) and ``block`` must be the buffer's only reader. Same program as
        in :meth:`compute_inline`:

        >>> import probsched as ps
        >>> from probsched.ir.compute import WorkloadBuilder, axes
        >>> from probsched.ir.ops import maximum
        >>> wb = WorkloadBuilder("scale_relu")
        >>> A, (i, j) = wb.input("A", (2, 8)), axes("i j")
        >>> B = wb.compute("B", (i, j), A[i, j] * 2.0)
        >>> _ = wb.compute("C", (i, j), maximum(B[i, j], 0.0))
        >>> sch = ps.Schedule(wb.build())
        >>> sch.reverse_compute_inline(sch.get_block("C"))
        >>> print(sch.program)
        program scale_relu(A: float32[2, 8]) -> C: float32[2, 8]
          for i in range(2):
            for j in range(8):
              block B(i=i, j=j):
                C[i, j] = max(A[i, j] * 2.0, 0.0)
        """
        name = self._block(block, "reverse_compute_inline", (block,), 1)
        self.program = self._apply("reverse_compute_inline", (block,),
                                   inlining.reverse_compute_inline, name)
        self._record("reverse_compute_inline", (block,), ())
