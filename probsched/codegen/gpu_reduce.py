"""Cross-thread reductions on a GPU: a reduction whose loop is bound to a ``threadIdx`` axis.

Each thread reduces its share of the reduction into its own copy of a ``local`` buffer (the
schedule's ``set_scope(block, "local")``); after the thread loop a
:class:`~.gpu_nodes.KAllReduce` combines the copies across the threads of that axis, so that
every thread holds the total and its consumers read it like any local value. Softmax's row
max and row sum, and the partial sums of a norm, are reduced this way, as in MetaSchedule's
cross-thread reduction rule.

The plan side (:func:`cross_thread`) checks what makes it correct and names what does not:
the buffer is local, the reduction a sum, max or min of floats, its init runs before the
thread loop (in every thread), no other loop around the thread loop carries the same
reduction (its copies would be combined twice) and nothing inside reads the partial values.

In PTX (:func:`emit_allreduce`), by how the axis's threads lie in warps:

- ``warp``: the axis is x, its extent a power of two up to 32, float32: butterfly shuffles
  (``shfl.sync.bfly``) within each group of lanes, no shared memory, no barrier;
- ``warps``: the axis is x and its extent a multiple of 32, float32: shuffles within each
  warp, then one slot per warp in a shared scratch between two barriers;
- ``slots``: anything else: one slot per thread, a barrier, each thread combines its group's
  slots, a barrier.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import CodegenError
from ..ir import analysis, threads, tree
from ..ir import expr as E
from ..ir.program import Block, IterVar, Loop, LoopKind, Program, Scope, Store
from .exprs import ExprEmitter
from .gpu_nodes import KAllReduce
from .irtext import BYTES, Value, vec_type

if TYPE_CHECKING:
    from .nvptx import GpuEmitter

ALLREDUCE = "allreduce"  # the E.Call of a KAllReduce's block: allreduce.<op>.<axis>
SCRATCH = "allreduce.scratch"  # the shared scratch's name among the plan's allocations
UNROLLED_SLOTS = 32  # a group of more slots is combined in a loop
MAX_ELEMENTS = 64  # elements of one thread's copy combined after one thread loop
_OPS = ("sum", "max", "min")
_THREAD_AXES = (LoopKind.THREAD_X, LoopKind.THREAD_Y, LoopKind.THREAD_Z)


def cross_thread(loop: Loop, enclosing: tuple[Loop, ...], program: Program,
                 ext: dict[LoopKind, int]) -> tuple[KAllReduce, ...]:
    """The all-reduces that follow thread loop ``loop`` (inside ``enclosing``, outermost
    first): one per block under it whose reduction ``loop`` carries."""
    out = []
    for b in tree.blocks_under(loop):
        if loop.var not in threads.reduce_vars(b):
            continue
        buf = program.buffer(b.body.buffer)
        where = (f"block {b.name} reduces across the threads of loop {loop.var} "
                 f"({loop.kind.value})")
        if buf.scope != Scope.LOCAL:
            raise CodegenError(f"{where} into {buf.scope.value} {buf.name}; the threads would "
                               f"race: set_scope({b.name}, \"local\")")
        if b.reduction not in _OPS or buf.dtype not in ("float32", "float64"):
            raise CodegenError(f"{where}: a cross-thread reduction combines a sum, max or min "
                               f"of floats, not a {b.reduction} of {buf.dtype}")
        if b.init is not None:
            raise CodegenError(f"{where}, but its init is not hoisted out of the thread loop "
                               "(every thread must start its copy)")
        carried = threads.reduce_vars(b)
        twice = [lp.var for lp in enclosing if not lp.kind.is_thread and lp.var in carried]
        if twice:
            raise CodegenError(f"{where}, and loop {twice[0]} around it carries the reduction "
                               "too: reorder so that the thread loop is the outermost loop of "
                               "the reduction")
        readers = [o.name for o in tree.blocks_under(loop)
                   if o is not b and buf.name in analysis.buffers_read(o)]
        if readers:
            raise CodegenError(f"{where}, and block {readers[0]} reads {buf.name} inside that "
                               "loop, before the threads' copies are combined")
        inner = {**analysis.inner_loops(loop), loop.var: loop.extent}
        bind = b.binding_map
        indices = tuple(E.substitute(ix, bind) for ix in b.body.indices)
        box = analysis.region([indices], inner)
        if box is None or math.prod(box.extents) > MAX_ELEMENTS:
            raise CodegenError(f"{where}, and the elements of {buf.name} it writes there are "
                               f"not a box of at most {MAX_ELEMENTS}")
        out.append(_node(b, buf.name, box, loop.kind, ext[loop.kind]))
    return tuple(out)


def _node(block: Block, buffer: str, box: analysis.Interval, axis: LoopKind,
          extent: int) -> KAllReduce:
    tag = f"@ar.{block.name}"
    loops = tuple((f"{tag}.l{d}", n) for d, n in enumerate(box.extents))
    ivs = tuple(IterVar(f"{tag}.v{d}", n) for d, n in enumerate(box.extents))
    bindings = tuple(E.binary("+", start, E.Var(var))
                     for start, (var, _) in zip(box.starts, loops, strict=True))
    element = tuple(E.Var(iv.name) for iv in ivs)
    value = E.Call(f"{ALLREDUCE}.{block.reduction}.{axis.value}", (E.Load(buffer, element),))
    synthetic = Block(f"{block.name}_allreduce", ivs, bindings, Store(buffer, element, value))
    return KAllReduce(axis, extent, block.reduction or "sum", loops, synthetic)


def strategy(axis: LoopKind, dtype: str, block: tuple[int, int, int]) -> str:
    """How threads combine along ``axis`` (see the module doc): warp, warps or slots."""
    n = math.prod(block)
    whole_warps = n % 32 == 0 or n < 32
    x = block[0]
    if axis == LoopKind.THREAD_X and dtype == "float32" and whole_warps:
        if x <= 32 and x & (x - 1) == 0:
            return "warp"
        if x % 32 == 0 and x // 32 <= 32:
            return "warps"
    return "slots"


def scratch_bytes(node: KAllReduce, program: Program, block: tuple[int, int, int]) -> int:
    """Shared scratch one all-reduce needs."""
    dtype = program.buffer(node.block.body.buffer).dtype
    how = strategy(node.axis, dtype, block)
    if how == "warp":
        return 0
    if how == "warps":
        return math.prod(block) // 32 * 4
    return math.prod(block) * BYTES[dtype]


class GpuExprEmitter(ExprEmitter):
    """The expression emitter of a kernel, with the all-reduce call of a KAllReduce's block."""

    kernel: GpuEmitter
    SELECT_POINTERS = False  # its buffers live in several address spaces

    def call(self, name: str, x: Value) -> Value:
        if not name.startswith(ALLREDUCE + "."):
            return super().call(name, x)
        _, op, axis = name.split(".", 2)
        return emit_allreduce(self, self.kernel, x, op, threads.AXIS_NAMES[axis])


def emit_allreduce(ex: ExprEmitter, kernel: GpuEmitter, x: Value, op: str,
                   axis: LoopKind) -> Value:
    """``x`` combined by ``op`` over the threads of the block that differ only along
    ``axis``; every thread gets the result."""
    fn = ex.fn
    block = kernel.plan.block
    combine = "+" if op == "sum" else op
    how = strategy(axis, x.dtype, block)
    if how in ("warp", "warps"):
        n = math.prod(block)
        mask = -1 if n >= 32 else (1 << n) - 1
        width = block[0] if how == "warp" else 32
        name = "llvm.nvvm.shfl.sync.bfly.f32"
        ex.module.declare(name, f"declare float @{name}(i32, float, i32, i32)")
        off = width // 2
        while off >= 1:
            other = fn.op(f"call float @{name}(i32 {mask}, {x.typed}, i32 {off}, i32 31)",
                          "float32")
            x = ex.arith(combine, x, other)
            off //= 2
        if how == "warp":
            return x
    linear = kernel.linear_thread(fn)
    scratch = ex.ptrs[SCRATCH]
    ty = vec_type(x.dtype, 0)

    def slot(index: Value) -> str:
        return fn.op(f"getelementptr inbounds {ty}, ptr addrspace(3) {scratch}, "
                     f"{index.typed}", "int64").ref

    if how == "warps":
        lane = fn.op(f"and i64 {kernel.sreg(fn, LoopKind.THREAD_X).ref}, 31", "int64")
        first = fn.op(f"icmp eq i64 {lane.ref}, 0", "bool")
        warp = fn.op(f"lshr i64 {linear.ref}, 5", "int64")
        then_l, end_l = fn.label("ar.lead."), fn.label("ar.led.")
        fn.emit(f"br i1 {first.ref}, label %{then_l}, label %{end_l}")
        fn.start_block(then_l)
        fn.emit(f"store {x.typed}, ptr addrspace(3) {slot(warp)}, align 4")
        fn.emit(f"br label %{end_l}")
        fn.start_block(end_l)
        count, stride = block[0] // 32, 1  # the group's warps are consecutive
        group = fn.op(f"udiv i64 {warp.ref}, {count}", "int64")
        start = fn.op(f"mul nuw nsw i64 {group.ref}, {count}", "int64")
    else:
        fn.emit(f"store {x.typed}, ptr addrspace(3) {slot(linear)}, align {BYTES[x.dtype]}")
        k = _THREAD_AXES.index(axis)
        stride = math.prod(block[:k])
        count = block[k]
        coord = kernel.sreg(fn, axis) if count > 1 else Value("0", "int64")
        back = fn.op(f"mul nuw nsw i64 {coord.ref}, {stride}", "int64")
        start = fn.op(f"sub nuw nsw i64 {linear.ref}, {back.ref}", "int64")
    kernel.barrier(fn)
    align = BYTES[x.dtype]

    def load(j: Value) -> Value:
        at = fn.op(f"mul nuw nsw i64 {j.ref}, {stride}", "int64")
        at = fn.op(f"add nuw nsw i64 {start.ref}, {at.ref}", "int64")
        return fn.op(f"load {ty}, ptr addrspace(3) {slot(at)}, align {align}", x.dtype)

    acc = load(Value("0", "int64"))
    if count <= UNROLLED_SLOTS:
        for j in range(1, count):
            acc = ex.arith(combine, acc, load(Value(str(j), "int64")))
    else:  # a loop over the group's slots, its running value in a register (an alloca)
        cell = fn.alloca("ar.acc.", ty, 1, align=align)
        fn.emit(f"store {acc.typed}, ptr {cell}, align {align}")

        def body(j: Value) -> None:
            j1 = fn.op(f"add nuw nsw i64 {j.ref}, 1", "int64")
            old = fn.op(f"load {ty}, ptr {cell}, align {align}", x.dtype)
            new = ex.arith(combine, old, load(j1))
            fn.emit(f"store {new.typed}, ptr {cell}, align {align}")

        kernel.serial(ex, Loop("@ar.slot", count - 1, ()), False, None, bind=body)
        acc = fn.op(f"load {ty}, ptr {cell}, align {align}", x.dtype)
    kernel.barrier(fn)  # the scratch may be written again by the next all-reduce
    return acc
