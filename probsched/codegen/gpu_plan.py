"""A GPU program as one kernel: the launch, where its buffers live, and the body each thread
runs, with barriers (what NVPTX emission and the CPU emulation both execute).

Made from a Program after the lowering passes (:mod:`.passes`), top to bottom:

1. The program is one loop nest; its outermost loops bound to ``blockIdx.*`` (loops of one
   iteration between them aside) are the grid. The launch is the largest extent bound to
   each axis (:func:`probsched.ir.threads.launch_extents`).
2. Every thread of a block runs the body below the grid loops. A ``threadIdx`` loop binds its
   variable to the thread's index (a loop narrower than the launch guards its blocks); a
   serial, unrolled or ``vthread`` loop runs in every thread alike.
3. Each block is checked for races: one writing memory other threads see (shared, or the
   output) must have its written elements fed by every launched thread axis, and by every
   grid axis for the output; or, for a copy or elementwise block (no reduction) that no
   thread variable feeds, it runs **cooperatively**: the loops that hold only it are fused
   and their iterations dealt out to the block's threads (a cache_read into shared memory
   computed at a loop under the thread loops fills its tile this way; a vectorized innermost
   loop deals out runs of its extent, one vector access per thread).
4. Barriers: before a block that reads a shared buffer written since the last barrier, and
   before one that writes a shared buffer read since then (also across iterations of the
   loops around them). Loops run alike in every thread and guards are on blocks only, so
   every thread reaches every barrier.
5. Buffers: shared ones are compacted to the region all the block's threads touch
   (:mod:`probsched.ir.storage`), static up to the target's 48 KB and dynamic above, up to the
   opt-in limit; local ones to a thread's region, as on the CPU.

Refusals are :class:`~probsched.errors.CodegenError` naming the loop, block or buffer.
The plan's nodes are :mod:`.gpu_nodes`'; barriers are placed by :mod:`.gpu_sync`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import CodegenError
from ..ir import analysis, storage, threads, tree
from ..ir import expr as E
from ..ir.program import Block, Loop, LoopKind, Node, Program, Scope
from ..target import CudaTarget
from . import gpu_pipeline, gpu_reduce
from .buffers import BufferPlan
from .gpu_nodes import KAllReduce, KBlock, KCoop, KLoop, KNode, KThread, walk
from .gpu_sync import place_barriers


@dataclass(frozen=True)
class SharedAlloc:
    name: str
    offset_bytes: int  # in the block's shared memory
    nbytes: int


@dataclass(frozen=True)
class KernelPlan:
    program: Program  # after the lowering passes
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    grid_vars: tuple[tuple[str, LoopKind], ...]  # the grid loops' variables and axes
    fixed_vars: tuple[str, ...]  # loops of one iteration around the grid: 0
    body: tuple[KNode, ...]
    plans: dict[str, BufferPlan]  # compacted intermediates (shared and local)
    shared: tuple[SharedAlloc, ...]
    local: tuple[str, ...]
    dynamic_shared: bool  # over the static limit: one dynamic array, set at launch

    @property
    def shared_bytes(self) -> int:
        return sum(a.nbytes for a in self.shared)

    @property
    def threads(self) -> int:
        return math.prod(self.block)


_BLOCK_AXES = threads.BLOCK_AXES
_THREAD_AXES = threads.THREAD_AXES


def plan_kernels(program: Program, target: CudaTarget) -> tuple[KernelPlan, ...]:
    """The kernels of ``program`` (after the lowering passes), launched in order: one per
    root-level loop nest, a root block without loops joining the nest before it. A global
    intermediate lives in device memory (the workspace) between the kernel writing it and
    those reading it."""
    groups: list[list[Node]] = []
    pending: list[Node] = []  # blocks without loops: they join the next nest (or the last)
    for node in program.body:
        if isinstance(node, Block):
            pending.append(node)
        else:
            groups.append([*pending, node])
            pending = []
    if not groups:
        groups.append([])
    groups[-1] += pending
    if len(groups) == 1:
        return (plan_kernel(program, target),)
    seen: dict[str, int] = {}
    for k, group in enumerate(groups):
        for name in {n for node in group for b in tree.blocks_under(node)
                     for n in (b.body.buffer, *analysis.buffers_read(b))}:
            scope = program.buffer(name).scope
            if scope in (Scope.SHARED, Scope.LOCAL) and seen.setdefault(name, k) != k:
                raise CodegenError(
                    f"{scope.value} buffer {name} is used by kernels {seen[name] + 1} and "
                    f"{k + 1} of program {program.name} (one per root-level loop nest, blocks "
                    f"{_blocks_of(tuple(groups[seen[name]]))} and "
                    f"{_blocks_of(tuple(group))}); it lives in one kernel: compute_at its "
                    "producer into the nest that reads it")
    return tuple(plan_kernel(replace(program, body=tuple(g)), target) for g in groups)


def plan_kernel(program: Program, target: CudaTarget) -> KernelPlan:
    """The kernel of ``program`` (one loop nest, and blocks without loops after it) for
    ``target``."""
    body = program.body
    nests = [k for k, n in enumerate(body) if isinstance(n, Loop)]
    if len(nests) > 1:
        raise CodegenError(
            f"program {program.name} has {len(nests)} root-level loop nests (blocks "
            f"{_blocks_of(body)}); one kernel is one nest (plan_kernels makes several)")
    at = nests[0] if nests else 0
    before, extra = body[:at], body[at + 1:]
    _check_workspace(program)
    fixed: list[str] = []
    grid_vars: list[tuple[str, LoopKind]] = []
    node: Node = body[at]
    while isinstance(node, Loop) and (node.kind.is_block or (
            node.kind == LoopKind.SERIAL and node.extent == 1)) and len(node.body) == 1:
        if node.kind.is_block:
            grid_vars.append((node.var, node.kind))
        else:
            fixed.append(node.var)
        node = node.body[0]
    if isinstance(node, Loop) and node.kind.is_block:  # a grid loop holding several nests
        grid_vars.append((node.var, node.kind))
        inner: tuple[Node, ...] = node.body
    else:
        inner = (node,)
    if (before or extra) and grid_vars:
        raise CodegenError(f"block {_blocks_of(before + extra)} has no loops, beside a nest "
                           "bound to blockIdx: every thread block would run it (give it "
                           "loops, or reduce in one thread block)")
    inner = (*before, *inner, *extra)
    ext = threads.launch_extents(program.body)
    gx, gy, gz = (ext.get(a, 1) for a in _BLOCK_AXES)
    tx, ty, tz = (ext.get(a, 1) for a in _THREAD_AXES)
    grid, block = (gx, gy, gz), (tx, ty, tz)
    if len(grid_vars) != sum(1 for a in _BLOCK_AXES if a in ext):
        bad = next(lp for lp in program.loops() if lp.kind.is_block and
                   lp.var not in dict(grid_vars))
        raise CodegenError(f"loop {bad.var} is bound to {bad.kind.value} but is not among the "
                           "outermost loops (blockIdx loops must enclose everything)")
    if not ext:
        first = next((lp for lp in program.loops() if lp.extent > 1), None)
        where = f"loop {first.var} (extent {first.extent})" if first else "its loops"
        raise CodegenError(f"no loop of program {program.name} is bound to blockIdx or "
                           f"threadIdx: the kernel would run {where} serially on one thread; "
                           "bind its spatial loops")
    _check_limits(program, target, grid, block)
    kbody = tuple(k for n in inner for k in _convert(n, program, ext, (), set(dict(grid_vars))))
    kbody = place_barriers(kbody, program)
    kbody, db_buffers, db_plans = gpu_pipeline.double_buffer(kbody, program, math.prod(block))
    if db_buffers:
        program = replace(program, buffers=(*program.buffers, *db_buffers))
    scratch = max((gpu_reduce.scratch_bytes(n, program, block) for n in walk(kbody)
                   if isinstance(n, KAllReduce)),
                  default=0)
    plans, shared, local, dynamic = _buffers(program, target, scratch)
    plans.update(db_plans)
    local = (*local, *(b.name for b in db_buffers))
    return KernelPlan(program, grid, block, tuple(grid_vars), tuple(fixed), kbody, plans,
                      shared, local, dynamic)


def _blocks_of(nodes: tuple[Node, ...]) -> str:
    names = [b.name for n in nodes for b in tree.blocks_under(n)]
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def _check_limits(program: Program, target: CudaTarget, grid: tuple, block: tuple) -> None:
    n = math.prod(block)
    if n > target.max_threads_per_block:
        raise CodegenError(f"program {program.name} launches {n} threads per block "
                           f"{block}; {target.arch} allows {target.max_threads_per_block}")
    for axes, dims, got, what in ((_THREAD_AXES, target.max_block_dims, block, "block"),
                                  (_BLOCK_AXES, target.max_grid_dims, grid, "grid")):
        for axis, most, e in zip(axes, dims, got, strict=True):
            if e > most:
                raise CodegenError(f"{axis.value} is {e} in program {program.name}; the "
                                   f"{what} dimension is at most {most} on {target.arch}")


# ---------------------------------------------------------------- body and races


def _convert(node: Node, program: Program, ext: dict[LoopKind, int],
             bound: tuple[tuple[str, LoopKind], ...], grid: set[str],
             enclosing: tuple[Loop, ...] = ()) -> tuple[KNode, ...]:
    """The plan's nodes for ``node`` (inside the loops ``enclosing``, outermost first)."""
    if isinstance(node, Block):
        return (_block(node, program, ext, bound, grid),)
    if node.kind.is_block:
        raise CodegenError(f"loop {node.var} is bound to {node.kind.value} inside the kernel's "
                           "body; blockIdx loops must be the outermost")
    if node.kind == LoopKind.PARALLEL:
        raise CodegenError(f"loop {node.var} is parallel, a CPU loop kind the cuda target "
                           "does not run; bind it to a thread axis")
    around = (*enclosing, node)
    if node.kind.is_thread:
        inner = (*bound, (node.var, node.kind))
        body = tuple(k for n in node.body
                     for k in _convert(n, program, ext, inner, grid, around))
        if node.extent < ext[node.kind]:
            guard = E.Compare("<", E.Var(node.var), E.Const(node.extent))
            body = tuple(_guarded(n, guard) for n in body)
        reduces = gpu_reduce.cross_thread(node, enclosing, program, ext)
        return (KThread(node.var, node.kind, node.extent, body), *reduces)
    coop = _cooperative_chain(node, program, ext, bound)
    if coop is not None:
        return (coop,)
    if node.kind == LoopKind.VECTORIZED:
        raise CodegenError(f"loop {node.var} is vectorized; on the cuda target only the "
                           "innermost loop of a cooperative copy (a vector access per thread) "
                           "may be: bind it to a thread axis or unroll it")
    body = tuple(k for n in node.body for k in _convert(n, program, ext, bound, grid, around))
    return (KLoop(node.var, node.extent, node.kind, body, node.annotations),)


def _guarded(node: KNode, guard: E.Expr) -> KNode:
    """``node`` with ``guard`` on each of its (non-cooperative) blocks."""
    if isinstance(node, KBlock):
        return KBlock(tree.add_predicate(node.block, guard))
    if isinstance(node, KLoop | KThread):
        return replace(node, body=tuple(_guarded(n, guard) for n in node.body))
    return node  # a cooperative block uses every thread; barriers stay unconditional


def _needs_threads(block: Block, program: Program) -> bool:
    return program.buffer(block.body.buffer).scope != Scope.LOCAL


def _check_workspace(program: Program) -> None:
    """A global intermediate is written by one kernel and read by later ones: other thread
    blocks of the kernel writing it could read it before it is written."""
    written = {b.body.buffer for b in program.blocks()}
    for b in program.blocks():
        for name in analysis.buffers_read(b) & written:
            if program.buffer(name).scope == Scope.GLOBAL:
                raise CodegenError(f"block {b.name} reads {name}, a global intermediate "
                                   "written in the same loop nest; other thread blocks may "
                                   "not have written it yet: compute_at or inline it, cache "
                                   "it in local or shared memory, or give it a nest of its "
                                   "own (a kernel of its own)")


def _thread_feeds(block: Block, bound: tuple[tuple[str, LoopKind], ...]) -> set[LoopKind]:
    used = threads.spatial_vars(block)
    return {axis for var, axis in bound if var in used}


def _block(block: Block, program: Program, ext: dict[LoopKind, int],
           bound: tuple[tuple[str, LoopKind], ...], grid: set[str]) -> KNode:
    if not _needs_threads(block, program):
        return KBlock(block)
    launched = {a for a in _THREAD_AXES if ext.get(a, 1) > 1}
    fed = _thread_feeds(block, bound)
    thread_vars = {v for v, _ in bound}
    pred_vars = E.free_vars(block.predicate) if block.predicate is not None else set()
    if not fed and not (pred_vars & thread_vars) and not any(
            iv.reduce for iv in block.iter_vars):
        _check_grid(block, program, grid)
        return KCoop((), block)
    missing = launched - fed
    if missing:
        axes = ", ".join(sorted(a.value for a in missing))
        raise CodegenError(f"block {block.name} writes {block.body.buffer} at the same elements "
                           f"in every thread along {axes} (no loop bound to it feeds the "
                           "write); the threads would race: bind a spatial loop of it")
    _check_grid(block, program, grid)
    return KBlock(block)


def _check_grid(block: Block, program: Program, grid: set[str]) -> None:
    if program.buffer(block.body.buffer).scope not in (Scope.OUTPUT, Scope.GLOBAL):
        return
    unused = grid - threads.spatial_vars(block)
    if unused:
        raise CodegenError(f"block {block.name} writes output {block.body.buffer} at the same "
                           f"elements in every thread block along loop(s) "
                           f"{', '.join(sorted(unused))}; the blocks would race")


def _cooperative_chain(loop: Loop, program: Program, ext: dict[LoopKind, int],
                       bound: tuple[tuple[str, LoopKind], ...]) -> KCoop | None:
    """``loop`` and the loops directly inside it holding one node each, down to one block
    that runs cooperatively; None when it is not such a nest."""
    chain: list[tuple[str, int]] = []
    node: Node = loop
    vector = 1
    while isinstance(node, Loop):
        if len(node.body) != 1 or vector > 1:
            return None
        if node.kind == LoopKind.VECTORIZED:
            vector = node.extent
        elif node.kind not in (LoopKind.SERIAL, LoopKind.UNROLLED):
            return None
        chain.append((node.var, node.extent))
        node = node.body[0]
    block = node
    if not _needs_threads(block, program) or any(iv.reduce for iv in block.iter_vars):
        return None
    thread_vars = {v for v, _ in bound}
    pred_vars = E.free_vars(block.predicate) if block.predicate is not None else set()
    if _thread_feeds(block, bound) or pred_vars & thread_vars:
        return None
    if vector > 1:
        most = 16 // storage.ITEMSIZE[program.buffer(block.body.buffer).dtype]
        if vector > most:
            raise CodegenError(f"loop {chain[-1][0]} of the copy {block.name} is vectorized "
                               f"over {vector} elements; a GPU vector access is at most "
                               f"16 bytes ({most} of them)")
    return KCoop(tuple(chain), block, vector)


# ---------------------------------------------------------------- buffers


def _buffers(program: Program, target: CudaTarget, scratch: int = 0
             ) -> tuple[dict[str, BufferPlan], tuple[SharedAlloc, ...], tuple[str, ...], bool]:
    """Compacted plans of the intermediates, the shared allocations (with the all-reduce
    scratch, ``scratch`` bytes, last), the local buffers, and whether shared memory is
    dynamic."""
    found = storage.uses(program)
    plans: dict[str, BufferPlan] = {}
    shared: list[SharedAlloc] = []
    local: list[str] = []
    offset = 0
    for buf in program.buffers:
        if buf.scope not in (Scope.SHARED, Scope.LOCAL) or buf.name not in found:
            continue
        place = storage.placement(program, buf.name, found)
        if buf.scope == Scope.SHARED and not any(lp.kind.is_block for lp in place.loops) and (
                any(lp.kind.is_block for lp in program.loops())):
            raise CodegenError(f"shared buffer {buf.name} is not placed under the blockIdx "
                               "loops (compute_at its copy under them)")
        if place.region is not None:
            plans[buf.name] = BufferPlan(place.region.extents, place.region.starts, None,
                                         buf.align)
        else:
            plans[buf.name] = BufferPlan(buf.shape, None, None, buf.align)
        nbytes = storage.placed_bytes(program, buf.name, place)
        if buf.scope == Scope.SHARED:
            offset = -(-offset // 16) * 16
            shared.append(SharedAlloc(buf.name, offset, nbytes))
            offset += nbytes
        else:
            local.append(buf.name)
    if scratch:
        offset = -(-offset // 16) * 16
        shared.append(SharedAlloc(gpu_reduce.SCRATCH, offset, scratch))
        offset += scratch
    total = sum(a.nbytes for a in shared)
    if total > target.shared_bytes_optin:
        shown = ", ".join(f"{a.name} {a.nbytes} B" for a in shared)
        raise CodegenError(f"program {program.name} needs {total} bytes of shared memory per "
                           f"block ({shown}); {target.arch} allows at most "
                           f"{target.shared_bytes_optin}")
    dynamic = offset > target.shared_bytes_per_block
    return plans, tuple(shared), tuple(local), dynamic
