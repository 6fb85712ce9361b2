"""The nodes of a GPU kernel plan (:mod:`.gpu_plan`): what every thread of a block runs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import CodegenError
from ..ir.program import Block, Loop, LoopKind


@dataclass(frozen=True)
class KLoop:
    """A loop every thread runs alike (``kind``: serial, unrolled or vthread)."""

    var: str
    extent: int
    kind: LoopKind
    body: tuple[KNode, ...]
    annotations: tuple[tuple[str, int | float | str], ...] = ()


@dataclass(frozen=True)
class KThread:
    """``var`` is the thread's index on ``axis`` (``threadIdx.x`` ...); its extent is at
    most the launch's on that axis (the blocks below are guarded when less)."""

    var: str
    axis: LoopKind
    extent: int
    body: tuple[KNode, ...]


@dataclass(frozen=True)
class KBlock:
    block: Block


@dataclass(frozen=True)
class KCoop:
    """``block`` over ``loops`` (outermost first), their fused iterations dealt out to all
    the threads of the block: thread ``t`` runs iterations ``t``, ``t + n``, ... When the
    innermost loop is vectorized (``vector`` > 1, its extent), they are dealt out in runs of
    ``vector`` consecutive iterations, so that each thread's accesses are one vector access
    (16 bytes of float32: ``ld.global.v4``, ``st.shared.v4``)."""

    loops: tuple[tuple[str, int], ...]
    block: Block
    vector: int = 1

    @property
    def total(self) -> int:
        return math.prod(e for _, e in self.loops)

    @property
    def groups(self) -> int:
        """How many runs of ``vector`` iterations are dealt out."""
        return self.total // self.vector


@dataclass(frozen=True)
class KBarrier:
    """Every thread of the block waits here (``__syncthreads``)."""

    why: str


@dataclass(frozen=True)
class KAllReduce:
    """After a thread loop carrying ``block``'s reduction (:mod:`.gpu_reduce`): every
    thread's copy of the elements written there, combined by ``reduction`` across the
    ``extent`` threads along ``axis``, so that each thread holds the total. ``loops`` run
    over those elements and ``block`` stores one, its value the ``allreduce`` call."""

    axis: LoopKind
    extent: int
    reduction: str
    loops: tuple[tuple[str, int], ...]
    block: Block


@dataclass(frozen=True)
class KPrefetch:
    """Half of a double-buffered copy (:mod:`.gpu_pipeline`): ``coop`` for step ``var`` + 1
    (skipped on the last of ``extent`` steps), either its global loads into this thread's
    registers ``slots`` (``phase`` "load") or those registers stored into shared memory
    ("store")."""

    coop: KCoop
    var: str
    extent: int
    phase: str
    slots: str


KNode = KLoop | KThread | KBlock | KCoop | KBarrier | KAllReduce | KPrefetch


def walk(nodes: Iterable[KNode]) -> Iterator[KNode]:
    """Every node of ``nodes`` and, inside loops and thread bindings, of their bodies (a
    node before the nodes it holds)."""
    for node in nodes:
        yield node
        if isinstance(node, KLoop | KThread):
            yield from walk(node.body)


def program_loop(node: KLoop) -> Loop:
    """A plan's loop as the program's loop it came from (what an intrinsic's ``fits`` reads);
    a tile holding a barrier or a cooperative copy cannot be one intrinsic's."""
    body: list[Loop | Block] = []
    for n in node.body:
        if isinstance(n, KBlock):
            body.append(n.block)
        elif isinstance(n, KLoop):
            body.append(program_loop(n))
        else:
            raise CodegenError(f"loop {node.var} (tensorize) holds a {type(n).__name__}; an "
                               "intrinsic's tile has only loops and blocks")
    return Loop(node.var, node.extent, tuple(body), node.kind, node.annotations)
