"""Programs: trees of loops and blocks, lowered from a workload (in the spirit of TensorIR).

A :class:`Block` is one stage's statement. Its iteration variables are bound to expressions of
the enclosing loop variables; its store and init are written in terms of the iteration
variables only. Schedule primitives rewrite loops and bindings and leave block bodies alone,
which keeps legality checks to region analysis on the bindings.

>>> from probsched.workloads import gmm
>>> print(lower(gmm(b=1, n=4, m=2, k=8)))
program gmm(A: float32[1, 4, 8], B: float32[1, 8, 2]) -> C: float32[1, 4, 2]
  for b in range(1):
    for i in range(4):
      for j in range(2):
        for k in range(8):
          block C(b=b, i=i, j=j; sum k=k):
            init C[b, i, j] = 0.0
            C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from . import dtypes
from . import expr as E
from .compute import Workload
from .expr import Const, Expr, Load, Var


class LoopKind(StrEnum):
    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZED = "vectorized"
    UNROLLED = "unrolled"
    # Bound to a GPU thread axis (the schedule's ``bind``): the loop's iterations run on
    # distinct blocks or threads; a vthread loop runs in each thread, interleaved.
    BLOCK_X = "blockIdx.x"
    BLOCK_Y = "blockIdx.y"
    BLOCK_Z = "blockIdx.z"
    THREAD_X = "threadIdx.x"
    THREAD_Y = "threadIdx.y"
    THREAD_Z = "threadIdx.z"
    VTHREAD = "vthread"

    @property
    def is_block(self) -> bool:
        """Bound to ``blockIdx.*``."""
        return self.value.startswith("blockIdx.")

    @property
    def is_thread(self) -> bool:
        """Bound to ``threadIdx.*``."""
        return self.value.startswith("threadIdx.")

    @property
    def is_bound(self) -> bool:
        """Bound to any GPU axis (blocks, threads or vthread)."""
        return self in GPU_KINDS


GPU_KINDS = frozenset({LoopKind.BLOCK_X, LoopKind.BLOCK_Y, LoopKind.BLOCK_Z, LoopKind.THREAD_X,
                       LoopKind.THREAD_Y, LoopKind.THREAD_Z, LoopKind.VTHREAD})


class Scope(StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    GLOBAL = "global"  # an intermediate shared by the whole kernel (heap)
    LOCAL = "local"  # per thread, on the stack; small ones become registers
    SHARED = "shared"  # GPU: per thread block, in shared memory


@dataclass(frozen=True, slots=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scope: Scope
    # (axis, factor, offset): that axis's stride padded to offset mod factor (storage_align)
    align: tuple[tuple[int, int, int], ...] = ()

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def strides(self) -> tuple[int, ...]:
        return aligned_strides(self.shape, self.align)


def aligned_strides(shape: tuple[int, ...], align: tuple[tuple[int, int, int], ...] = ()
                    ) -> tuple[int, ...]:
    """Row-major element strides, each axis named in ``align`` (axis, factor, offset) padded
    up to the next stride that is ``offset`` mod ``factor`` (a shared tile's rows then start
    in different memory banks).

    >>> aligned_strides((4, 8, 32), ((1, 32, 4),))
    (288, 36, 1)
    """
    want = {axis: (factor, offset) for axis, factor, offset in align}
    out, acc = [], 1
    for d in reversed(range(len(shape))):
        if d in want:
            factor, offset = want[d]
            acc += (offset - acc) % factor
        out.append(acc)
        acc *= shape[d]
    return tuple(reversed(out))


def allocated_elements(shape: tuple[int, ...], align: tuple[tuple[int, int, int], ...] = ()
                       ) -> int:
    """Elements an array of ``shape`` laid out with ``align`` occupies, padding included."""
    if not shape:
        return 1
    return shape[0] * aligned_strides(shape, align)[0]


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape``."""
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(reversed(out))


@dataclass(frozen=True, slots=True)
class IterVar:
    name: str
    extent: int
    reduce: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    buffer: str
    indices: tuple[Expr, ...]
    value: Expr


@dataclass(frozen=True, slots=True)
class Block:
    """One statement instance per point of its iteration domain.

    ``predicate`` (in loop variables) guards partial tiles; ``init`` runs when every reduce
    iteration variable is 0; ``reduction`` names the combine of ``body`` (sum/max/min), which
    is what allows reassociating it.
    """

    name: str
    iter_vars: tuple[IterVar, ...]
    bindings: tuple[Expr, ...]
    body: Store
    init: Store | None = None
    predicate: Expr | None = None
    reduction: str | None = None

    @property
    def binding_map(self) -> dict[str, Expr]:
        return {iv.name: b for iv, b in zip(self.iter_vars, self.bindings, strict=True)}


@dataclass(frozen=True, slots=True)
class Loop:
    """``for var in range(extent)``; the kind says how it runs."""

    var: str
    extent: int
    body: tuple[Node, ...]
    kind: LoopKind = LoopKind.SERIAL
    annotations: tuple[tuple[str, int | float | str], ...] = ()


Node = Loop | Block


@dataclass(frozen=True)
class Program:
    """A kernel: buffers (inputs, outputs, intermediates, locals) and a body of loops."""

    name: str
    buffers: tuple[Buffer, ...]
    body: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # Caches, never passed in (so ``dataclasses.replace`` starts them afresh).
    _by_name: dict = field(default_factory=dict, init=False, compare=False, repr=False)
    _paths: list = field(default_factory=list, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({b.name: b for b in self.buffers})

    def buffer(self, name: str) -> Buffer:
        return self._by_name[name]

    def with_body(self, body: tuple[Node, ...]) -> Program:
        return Program(self.name, self.buffers, body, self.inputs, self.outputs)

    def paths(self) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
        """(loop variable -> path, block name -> path), computed once per program: search
        replays thousands of traces, and every primitive looks nodes up by name."""
        if not self._paths:
            loops: dict[str, tuple[int, ...]] = {}
            blocks: dict[str, tuple[int, ...]] = {}
            stack: list[tuple[tuple[Node, ...], tuple[int, ...]]] = [(self.body, ())]
            while stack:
                body, prefix = stack.pop()
                for k, node in enumerate(body):
                    path = (*prefix, k)
                    if isinstance(node, Loop):
                        loops[node.var] = path
                        stack.append((node.body, path))
                    else:
                        blocks[node.name] = path
            self._paths.append((loops, blocks))
        return self._paths[0]

    def blocks(self) -> Iterator[Block]:
        for node, _ in walk(self.body):
            if isinstance(node, Block):
                yield node

    def loops(self) -> Iterator[Loop]:
        for node, _ in walk(self.body):
            if isinstance(node, Loop):
                yield node


def walk(body: tuple[Node, ...], path: tuple[Loop, ...] = ()) -> Iterator[tuple[Node, tuple]]:
    """Pre-order (node, enclosing loops) pairs."""
    for node in body:
        yield node, path
        if isinstance(node, Loop):
            yield from walk(node.body, (*path, node))


def lower(workload: Workload) -> Program:
    """The untransformed program: one loop nest per stage, spatial loops outside reduce loops,
    in the order the axes are written."""
    buffers = [Buffer(t.name, t.shape, t.dtype, Scope.INPUT) for t in workload.inputs]
    out = workload.output.name
    taken: set[str] = set()
    last: dict[str, int] = {}
    nests: list[Node] = []
    for s in workload.stages:
        scope = Scope.OUTPUT if s.name == out else Scope.GLOBAL
        buffers.append(Buffer(s.name, s.shape, s.dtype, scope))
        axes = [(a, n, False) for a, n in zip(s.axes, s.shape, strict=True)]
        axes += [(a, n, True) for a, n in s.reduce_axes]
        loop_names = [_fresh(a, taken, last) for a, _, _ in axes]
        iter_vars = tuple(IterVar(a, n, red) for a, n, red in axes)
        bindings = tuple(Var(n) for n in loop_names)
        index = tuple(Var(a) for a in s.axes)
        if s.reduction is None:
            block = Block(s.name, iter_vars, bindings, Store(s.name, index, s.value))
        else:
            init_value = Const(dtypes.identity_of(s.reduction, s.dtype))
            update = E.binary(_COMBINE[s.reduction], Load(s.name, index), s.body)
            block = Block(
                s.name,
                iter_vars,
                bindings,
                Store(s.name, index, update),
                init=Store(s.name, index, init_value),
                reduction=s.reduction,
            )
        node: Node = block
        for name, (_, n, _) in reversed(list(zip(loop_names, axes, strict=True))):
            node = Loop(name, n, (node,))
        nests.append(node)
    return Program(
        workload.name,
        tuple(buffers),
        tuple(nests),
        tuple(t.name for t in workload.inputs),
        (out,),
    )


_COMBINE = {"sum": "+", "max": "max", "min": "min"}


def _fresh(name: str, taken: set[str], last: dict[str, int]) -> str:
    """``name``, or ``name_1``, ``name_2``, ... (the first not taken); the search starts where
    the previous one for ``name`` ended, so many stages with the same axis names lower in
    linear time."""
    n = last.get(name, 0)
    cand = name if n == 0 else f"{name}_{n}"
    while cand in taken:
        n += 1
        cand = f"{name}_{n}"
    taken.add(cand)
    last[name] = n
    return cand
