"""Queries: deterministic functions of the current program or the target that return plain
values and record nothing, so a replay takes the same branches. The `.sched` builtins of the
same names call them; rules check with them before they act (docs/language.md lists them,
from the registry).
"""

from __future__ import annotations

from typing import Any

from ..errors import ProbschedError, ScheduleError
from ..ir import analysis, tree
from ..ir import expr as E
from ..ir.program import Block, Loop
from ..target import CpuTarget, CudaTarget
from .primitives import inlining
from .registry import INSTRUCTIONS, query
from .state import Removed, ScheduleState
from .trace import RV


class QueryMethods(ScheduleState):
    """The queries of a :class:`~.schedule.Schedule`."""

    def _node(self, block: RV, prim: str) -> Block:
        name = self._block(block, prim, (block,), 1)
        return tree.block_at(self.program, tree.block_path(self.program, name))

    def _known_block(self, block: Any, prim: str) -> str:
        if not isinstance(block, RV) or block.kind != "b" or block not in self._values:
            raise self._fail(prim, (block,), "argument 1 is not a block of this schedule")
        return self._values[block]

    # ------------------------------------------------------------ blocks

    @query("block", returns="str")
    def block_name(self, block: RV) -> str:
        """The block's name (also after it was removed)."""
        return str(self._known_block(block, "block_name"))

    @query("block", returns="bool")
    def is_alive(self, block: RV) -> bool:
        """Whether the block still exists (inlining removes blocks)."""
        name = self._known_block(block, "is_alive")
        return not isinstance(name, Removed) and tree.find_block(self.program, name) is not None

    @query("block", returns="bool")
    def is_reduction(self, block: RV) -> bool:
        """Whether the block reduces (has reduce iteration variables)."""
        return inlining.is_reduction(self._node(block, "is_reduction"))

    @query("block", returns="bool")
    def is_injective(self, block: RV) -> bool:
        """Whether the block is spatial-only and reads every buffer at indices affine in its
        iteration variables (elementwise, padding, transposes, broadcasts)."""
        blk = self._node(block, "is_injective")
        if inlining.elementwise_error(blk, "block") is not None:
            return False
        return all(analysis.affine(i) is not None for ld in E.loads(blk.body.value)
                   for i in ld.indices)

    @query("block", returns="bool")
    def has_select(self, block: RV) -> bool:
        """Whether the block's value has a ``select`` (an if-then-else, e.g. padding)."""
        blk = self._node(block, "has_select")
        return any(isinstance(e, E.Select) for e in E.walk(blk.body.value))

    @query("block", returns="bool")
    def can_inline(self, block: RV) -> bool:
        """Whether ``compute_inline(block)`` would succeed."""
        return inlining.can_inline(self.program, self._block(block, "can_inline", (block,), 1))

    @query("block", returns="bool")
    def is_output(self, block: RV) -> bool:
        """Whether the block writes an output of the program."""
        return self._node(block, "is_output").body.buffer in self.program.outputs

    @query("block", returns="int")
    def num_consumers(self, block: RV) -> int:
        """How many blocks read what the block writes."""
        return len(analysis.consumers(self.program, self._node(block, "num_consumers")))

    @query("block", returns="int")
    def num_producers(self, block: RV) -> int:
        """How many blocks write what the block reads."""
        return len(analysis.producers(self.program, self._node(block, "num_producers")))

    @query("block", returns="strs")
    def loop_types(self, block: RV) -> list[str]:
        """Per loop of ``get_loops(block)``: ``"S"`` when it feeds only spatial iteration
        variables, ``"R"`` when only reduce ones, ``"O"`` otherwise (both or neither)."""
        blk = self._node(block, "loop_types")
        path = tree.block_path(self.program, blk.name)
        spatial: set[str] = set()
        reduce: set[str] = set()
        for iv, b in zip(blk.iter_vars, blk.bindings, strict=True):
            (reduce if iv.reduce else spatial).update(E.free_vars(b))
        out = []
        for lp in tree.ancestors(self.program, path):
            s, r = lp.var in spatial, lp.var in reduce
            out.append("S" if s and not r else "R" if r and not s else "O")
        return out

    @query("block", returns="strs")
    def reuse_reads(self, block: RV) -> list[str]:
        """The buffers the block reads at indices missing one of its spatial iteration
        variables (each element is reused across it), in order of first read: candidates
        for tiling and ``cache_read``."""
        blk = self._node(block, "reuse_reads")
        spatial = {iv.name for iv in blk.iter_vars if not iv.reduce}
        out: list[str] = []
        stores = [blk.body] + ([blk.init] if blk.init is not None else [])
        for st in stores:
            for ld in E.loads(st.value):
                if ld.tensor == st.buffer or ld.tensor in out:
                    continue
                used = set().union(*(E.free_vars(i) for i in ld.indices)) if ld.indices else set()
                if spatial - used:
                    out.append(ld.tensor)
        return out

    @query("block buffer", returns="ints")
    def spatial_last_order(self, block: RV, buffer: str) -> list[int]:
        """An order of ``buffer``'s axes for ``transform_layout``: its innermost axis that
        the block indexes with a spatial variable moved last, when the block indexes its last
        axis with reduction variables only (a matmul's ``A[i, k]``: ``[1, 0]``); ``[]``
        otherwise. A thread's rows of a shared tile of it are then adjacent (vector reads)."""
        blk = self._node(block, "spatial_last_order")
        reduce = {iv.name for iv in blk.iter_vars if iv.reduce}
        spatial = {iv.name for iv in blk.iter_vars if not iv.reduce}
        reads = [ld for ld in E.loads(blk.body.value) if ld.tensor == buffer]
        if not reads or not reads[0].indices:
            return []
        used = [E.free_vars(i) for i in reads[0].indices]
        if not used[-1] or not used[-1] <= reduce:
            return []
        rows = [k for k, names in enumerate(used[:-1]) if names & spatial]
        if not rows:
            return []
        order = [k for k in range(len(used)) if k != rows[-1]]
        return [*order, rows[-1]]

    # ------------------------------------------------------------ loops

    def _loop_node(self, loop: RV, prim: str) -> Loop:
        var = self._loop(loop, prim, (loop,), 1)
        return tree.loop_at(self.program, tree.loop_path(self.program, var))

    @query("loop", returns="int")
    def loop_extent(self, loop: RV) -> int:
        """The extent of a loop (its iteration count)."""
        return self._loop_node(loop, "loop_extent").extent

    @query("loop", returns="str")
    def loop_kind(self, loop: RV) -> str:
        """How the loop runs: ``"serial"``, ``"parallel"``, ``"vectorized"`` or
        ``"unrolled"``."""
        return self._loop_node(loop, "loop_kind").kind.value

    @query("loop", returns="int")
    def loop_children(self, loop: RV) -> int:
        """How many loops and blocks the loop's body holds directly."""
        return len(self._loop_node(loop, "loop_children").body)

    # ------------------------------------------------------------ the target

    def _cpu(self, prim: str, args: tuple) -> CpuTarget:
        """The target, for the queries only a CPU target answers."""
        if not isinstance(self.target, CpuTarget):
            raise self._fail(prim, args, f"not a CPU target: {self.target.describe()}")
        return self.target

    @query("str", returns="int")
    def vector_lanes(self, dtype: str = "float32") -> int:
        """Lanes of ``dtype`` in one of the target's vectors (8 float32 with AVX2, 16 with
        AVX-512)."""
        try:
            return self._cpu("vector_lanes", (dtype,)).vector_lanes(dtype)
        except ProbschedError as exc:
            raise self._fail("vector_lanes", (dtype,), exc.message) from None

    @query(returns="int")
    def vector_registers(self) -> int:
        """The target's vector register count (16 with AVX2, 32 with AVX-512)."""
        return self._cpu("vector_registers", ()).vector_registers

    @query("int", returns="int")
    def cache_bytes(self, level: int) -> int:
        """The size in bytes of the target's level 1, 2 or 3 data cache (L1 and L2 per
        core)."""
        try:
            return self._cpu("cache_bytes", (level,)).cache_bytes(level)
        except ProbschedError as exc:
            raise self._fail("cache_bytes", (level,), exc.message) from None

    @query(returns="int")
    def num_cores(self) -> int:
        """The cores the target's code runs on."""
        return self._cpu("num_cores", ()).cores

    def _gpu(self, prim: str) -> CudaTarget:
        """The target, for the queries only a cuda target answers."""
        if not isinstance(self.target, CudaTarget):
            raise self._fail(prim, (), f"not a GPU target: {self.target.describe()} "
                             "(schedule for target='cuda')")
        return self.target

    @query(returns="int")
    def warp_size(self) -> int:
        """The GPU's threads per warp (32 on NVIDIA GPUs)."""
        return self._gpu("warp_size").warp_size

    @query(returns="int")
    def max_threads_per_block(self) -> int:
        """The most threads a GPU thread block may have (1,024 on sm_90)."""
        return self._gpu("max_threads_per_block").max_threads_per_block

    @query(returns="int")
    def max_shared_bytes(self) -> int:
        """The most shared memory a GPU thread block may use, in bytes (opted in: 227 KB on
        sm_90; above 48 KB it is dynamic)."""
        return self._gpu("max_shared_bytes").shared_bytes_optin

    # ------------------------------------------------------------ primitives

    @query("prim any", returns="bool")
    def legal(self, prim: str, *args: Any) -> bool:
        """Whether primitive ``prim`` would accept the arguments now (the schedule is left
        unchanged)."""
        kind = INSTRUCTIONS.get(prim)
        if kind is None or kind.sampling:
            raise self._fail("legal", (prim,), f"{prim!r} is not a primitive")
        method = getattr(self, prim)
        if len(args) == 1 and isinstance(args[0], list | tuple) and kind.variadic:
            args = tuple(args[0])  # legal("reorder", order), as the interpreter spreads it
        # A dry run: nothing is recorded, so no RV is retired and the values only grow (the
        # new ones last, as dicts keep order); the step's program is kept for the real call.
        saved = (self.program, len(self._values), self._next_rv, self._alive)
        self._dry = True
        try:
            method(*args)
            return True
        except ScheduleError:
            return False
        finally:
            self._dry = False
            self.program, n_values, self._next_rv, self._alive = saved
            while len(self._values) > n_values:
                self._values.popitem()
