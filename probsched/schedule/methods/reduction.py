"""Reduction primitives: decompose_reduction and rfactor."""

from __future__ import annotations

from ..primitives import reduction
from ..registry import instruction
from ..state import ScheduleState
from ..trace import RV


class ReductionMethods(ScheduleState):
    """Primitives that restructure reductions."""

    @instruction("block loop", returns="block")
    def decompose_reduction(self, block: RV, loop: RV) -> RV:
        """Move ``block``'s init into a block of its own, ``<block>_init``, placed just before
        ``loop``; returns it. ``loop`` must enclose ``block`` and be outside every loop that
        feeds a reduce binding. The loops from ``loop`` inwards that feed a spatial binding
        are copied (serial, named ``<loop>_init``) around the init block.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=2, m=8, k=4))
        >>> c = sch.get_block("C")
        >>> b, i, j, k = sch.get_loops(c)
        >>> init = sch.decompose_reduction(c, i)
        >>> print(sch.program)
        program gmm(A: float32[1, 2, 4], B: float32[1, 4, 8]) -> C: float32[1, 2, 8]
          for b in range(1):
            for i_init in range(2):
              for j_init in range(8):
                block C_init(b=b, i=i_init, j=j_init):
                  C[b, i, j] = 0.0
            for i in range(2):
              for j in range(8):
                for k in range(4):
                  block C(b=b, i=i, j=j; sum k=k):
                    C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
        """
        args = (block, loop)
        name = self._block(block, "decompose_reduction", args, 1)
        var = self._loop(loop, "decompose_reduction", args, 2)
        program, new = self._apply("decompose_reduction", args, reduction.decompose_reduction,
                                   name, var)
        self.program = program
        rv = self._rv("b", new)
        self._record("decompose_reduction", args, (rv,))
        return rv

    @instruction("loop int", returns="block")
    def rfactor(self, loop: RV, factor_axis: int = 0) -> RV:
        """Reduce in two steps: partial results per iteration of reduce loop ``loop`` into a
        new buffer ``<buf>_rf`` (the loop's dimension inserted at ``factor_axis``, negative
        counting from the end), then a reduction of those in a new nest after the block's.
        Returns the partial-results block ``<block>_rf``, where ``loop`` is spatial: it can be
        parallelized or vectorized. ``loop`` must hold one sum/max/min reduction block with
        its init and feed only reduce bindings.

        >>> import probsched as ps
        >>> sch = ps.Schedule(ps.workloads.nrm(n=4, m=8))
        >>> print(sch.program)
        program nrm(A: float32[4, 8]) -> Y: float32[]
          global S: float32[]
          for i in range(4):
            for j in range(8):
              block S(sum i=i, j=j):
                init S[] = 0.0
                S[] = S[] + A[i, j] * A[i, j]
          block Y():
            Y[] = sqrt(S[])
        >>> i, j = sch.get_loops(sch.get_block("S"))
        >>> rf = sch.rfactor(j, 0)
        >>> print(sch.program)
        program nrm(A: float32[4, 8]) -> Y: float32[]
          global S: float32[]
          global S_rf: float32[8]
          for i in range(4):
            for j in range(8):
              block S_rf(j=j; sum i=i):
                init S_rf[j] = 0.0
                S_rf[j] = S_rf[j] + A[i, j] * A[i, j]
          for ax0 in range(8):
            block S(sum j=ax0):
              init S[] = 0.0
              S[] = S[] + S_rf[j]
          block Y():
            Y[] = sqrt(S[])
        """
        args = (loop, factor_axis)
        var = self._loop(loop, "rfactor", args, 1)
        axis = self._int(factor_axis, "rfactor", args, "argument 2, 'factor_axis'")
        program, new = self._apply("rfactor", args, reduction.rfactor, var, axis)
        self.program = program
        rv = self._rv("b", new)
        self._record("rfactor", args, (rv,))
        return rv
