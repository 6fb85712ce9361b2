"""Lookups: the instructions that name blocks and loops of the program (pure: they change
nothing, and a simplified trace drops the unused ones)."""

from __future__ import annotations

from ...ir import analysis, tree
from ..registry import instruction
from ..state import ScheduleState
from ..trace import RV


class LookupMethods(ScheduleState):
    """Blocks and loops as random variables of the schedule."""

    def _related(self, prim: str, block: RV, fn) -> list[RV]:
        name = self._block(block, prim, (block,), 1)
        blk = tree.block_at(self.program, tree.block_path(self.program, name))
        rvs = [self._rv("b", b.name) for b in fn(self.program, blk)]
        self._record(prim, (block,), tuple(rvs))
        return rvs

    @instruction("str", returns="block", pure=True)
    def get_block(self, name: str) -> RV:
        """The block named ``name`` (blocks are named after their stage)."""
        if tree.find_block(self.program, name) is None:
            names = ", ".join(b.name for b in self.program.blocks())
            raise self._fail("get_block", (name,), f"no block {name!r}; blocks: {names}")
        rv = self._rv("b", name)
        self._record("get_block", (name,), (rv,))
        return rv

    @instruction("block", returns="loops", pure=True)
    def get_loops(self, block: RV) -> list[RV]:
        """The loops around ``block``, outermost first."""
        name = self._block(block, "get_loops", (block,), 1)
        path = tree.block_path(self.program, name)
        rvs = [self._rv("l", lp.var) for lp in tree.ancestors(self.program, path)]
        self._record("get_loops", (block,), tuple(rvs))
        return rvs

    @instruction("block", returns="blocks", pure=True)
    def get_producers(self, block: RV) -> list[RV]:
        """Blocks writing what ``block`` reads."""
        return self._related("get_producers", block, analysis.producers)

    @instruction("block", returns="blocks", pure=True)
    def get_consumers(self, block: RV) -> list[RV]:
        """Blocks reading what ``block`` writes."""
        return self._related("get_consumers", block, analysis.consumers)

    @instruction(returns="blocks", pure=True)
    def get_blocks(self) -> list[RV]:
        """Every block in post-order: consumers before their producers (the reverse of
        program order), the order in which generated spaces apply their rules."""
        rvs = [self._rv("b", b.name) for b in reversed(list(self.program.blocks()))]
        self._record("get_blocks", (), tuple(rvs))
        return rvs
