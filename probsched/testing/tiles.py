"""An intrinsic for tests of the tensorize hook (:mod:`probsched.codegen.intrinsics`).

:data:`MARKED` takes any loop over one block: it writes an inline-asm comment naming the
tile, then the loop unrolled, so a test can see the intrinsic ran (the comment is in the IR,
the assembly and the PTX) and check the kernel still computes the reference. Module-level,
so it travels to compile processes (``Builder(intrinsics=(MARKED,))``).
"""

from __future__ import annotations

from ..codegen.intrinsics import Intrinsic, Tile
from ..ir.program import Block, Loop

MARK = "probsched tile"
"""The text of the comment each tile starts with."""


def one_block(loop: Loop) -> str | None:
    """Why ``loop`` is not a loop over one block (None: it is)."""
    if len(loop.body) != 1 or not isinstance(loop.body[0], Block):
        return "its body is not one block"
    return None


def unroll_marked(tile: Tile) -> None:
    """The comment, then the loop's body at each of its iterations."""
    comment = "//" if tile.isa == "ptx" else "#"
    tile.line(f'call void asm sideeffect "{comment} {MARK} {tile.loop.var}", ""()')
    for k in range(tile.loop.extent):
        tile.bind(tile.loop.var, k)
        tile.body()


MARKED = Intrinsic("marked", one_block, unroll_marked)
