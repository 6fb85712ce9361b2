"""Lowering a :class:`~probsched.ir.program.Program` to LLVM IR text.

First the lowering passes rewrite the program (:mod:`.passes`: reduction inits hoisted before
their loops); then emission, top to bottom: buffers become pointer arguments (inputs,
outputs) or allocations (intermediates placed and sized by :mod:`.buffers`, on the stack when
small); loops become counted loops, except that unrolled loops are copied out, vectorized
loops run their body once on vectors where :mod:`.vector_plan` says they can, and the
outermost parallel loop is outlined (:mod:`.parallel`) into a function that libgomp's
``GOMP_parallel`` runs on every thread. Blocks bind their iteration variables and run their
init and store under their guard; expressions are :mod:`.exprs`', loads and stores
:mod:`.memory`'s.

>>> from probsched.workloads import gmm
>>> from probsched.ir import lower
>>> from probsched.target import host
>>> lowered = lower_program(lower(gmm(b=1, n=4, m=4, k=4)), host())
>>> lowered.signature.entry, [a.name for a in lowered.signature.args]
('gmm', ['A', 'B', 'C'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CodegenError
from ..ir import expr as E
from ..ir import ops, threads
from ..ir.program import Block, Loop, LoopKind, Node, Program
from ..target import CpuTarget
from . import intrinsics, memory, parallel
from .buffers import BufferPlan, plan_buffers
from .exprs import ExprEmitter
from .irtext import BYTES, Function, Module, Value, vec_type
from .lanes import VarInfo
from .machine import function_attributes
from .passes import PASSES, Pass, apply_passes
from .runtime import ArgSpec, KernelSignature
from .vector_plan import MAX_VECTOR_LANES, chunk_width, why_not_vectors

MAX_UNROLL = 1024
STACK_LIMIT_BYTES = 64 * 1024


@dataclass(frozen=True)
class LoweredKernel:
    ir: str
    signature: KernelSignature


def lower_program(program: Program, target: CpuTarget, *,
                  passes: tuple[Pass, ...] = PASSES) -> LoweredKernel:
    """LLVM IR text and calling signature of ``program``'s kernel for ``target``, emitted
    from the program after the lowering ``passes`` (:mod:`.passes`)."""
    gpu_only = threads.first_gpu_construct(program)
    if gpu_only is not None:
        raise CodegenError(f"program {program.name} is for a GPU ({gpu_only}); build it for "
                           f"target='cuda' (codegen.nvptx.build_cuda)")
    program = apply_passes(program, passes)
    entry = _symbol(program.name)
    module = Module()
    module.attributes = f"attributes #0 = {{ nounwind {function_attributes(target)} }}"
    args = [program.buffer(n) for n in (*program.inputs, *program.outputs)]
    params = ", ".join(f"ptr noalias %arg.{b.name}" for b in args)
    fn = Function(entry, params, attrs="#0")
    module.functions.append(fn)
    ptrs = {b.name: f"%arg.{b.name}" for b in args}
    plans = plan_buffers(program)
    kernel = KernelEmitter(module, program, entry, plans, target.vector_lanes())
    shared = [n for n, plan in plans.items() if plan.parallel_loop is None]
    heap = kernel.allocate(fn, ptrs, shared)
    kernel.body(fn, ptrs, program.body)
    kernel.free(fn, heap)
    fn.emit("ret void")
    sig = KernelSignature(
        entry,
        tuple(ArgSpec(b.name, b.shape, b.dtype, b.name in program.outputs) for b in args),
    )
    return LoweredKernel(module.text(), sig)


def _symbol(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


class KernelEmitter:
    """Emits a program's loops and blocks into the functions of one module."""

    ISA = "cpu"  # what inline assembly in this module is (a tensor intrinsic's Tile.isa)

    def __init__(self, module: Module, program: Program, entry: str,
                 plans: dict[str, BufferPlan], native_lanes: int):
        self.module = module
        self.native_lanes = native_lanes  # float32 lanes of the target's vectors
        self.program = program
        self.entry = entry
        self.plans = plans
        self.n_outlined = 0

    # ------------------------------------------------------------ functions

    def emitter(self, fn: Function, ptrs: dict[str, str]) -> ExprEmitter:
        return ExprEmitter(fn, self.module, self.program, dict(ptrs), self.plans)

    def body(self, fn: Function, ptrs: dict[str, str], nodes: tuple[Node, ...]) -> None:
        self.nodes(self.emitter(fn, ptrs), nodes, False)

    def allocate(self, fn: Function, ptrs: dict[str, str], names: list[str]) -> list[str]:
        """Allocate intermediates (their planned size) in ``fn``'s entry: small ones on the
        stack, so SROA can promote them to registers, large ones on the heap. Returns the
        heap pointers to free."""
        heap = []
        for name in names:
            b, plan = self.program.buffer(name), self.plans[name]
            nbytes = plan.size * BYTES[b.dtype]
            if nbytes <= STACK_LIMIT_BYTES:
                ptrs[name] = fn.alloca(f"buf.{_symbol(name)}.", vec_type(b.dtype, 0), plan.size)
            else:
                self.module.declare("malloc", "declare noalias ptr @malloc(i64)")
                p = fn.fresh(f"buf.{_symbol(name)}.")
                fn.entry.append(f"  {p} = call noalias ptr @malloc(i64 {nbytes})")
                ptrs[name] = p
                heap.append(p)
        return heap

    def free(self, fn: Function, heap: list[str]) -> None:
        if heap:
            self.module.declare("free", "declare void @free(ptr)")
        for p in heap:
            fn.emit(f"call void @free(ptr {p})")

    # ------------------------------------------------------------ nodes

    def nodes(self, ex: ExprEmitter, nodes: tuple[Node, ...], in_parallel: bool) -> None:
        for node in nodes:
            if isinstance(node, Block):
                self.block(ex, node)
            elif (name := intrinsics.requested(node)) is not None:
                self.tensorized(ex, node, name, in_parallel)
            elif node.kind == LoopKind.PARALLEL and not in_parallel and not ex.lanes:
                parallel.outline(self, ex, node)
            elif node.kind == LoopKind.UNROLLED and node.extent <= MAX_UNROLL:
                self.unrolled(ex, node, in_parallel)
            elif node.kind == LoopKind.VECTORIZED and not ex.lanes:
                reason = why_not_vectors(ex, node, self.native_lanes)
                if reason is None:
                    self.vectorized(ex, node, in_parallel)
                else:
                    vec_md = self.module.loop_metadata('!"llvm.loop.vectorize.enable", i1 true')
                    self.serial(ex, node, in_parallel, vec_md)
            else:
                self.serial(ex, node, in_parallel, self._annotation_metadata(node))

    def tensorized(self, ex: ExprEmitter, loop: Loop, name: str, in_parallel: bool,
                   body: tuple | None = None) -> None:
        """A loop annotated ``tensorize = name``: the registered intrinsic emits it
        (:mod:`.intrinsics`). ``body``: the nodes its ``Tile.body()`` emits (the GPU's plan
        nodes; default the loop's)."""
        if ex.lanes:
            raise CodegenError(f"loop {loop.var} (tensorize {name!r}) is inside a vectorized "
                               "loop; an intrinsic's tile is emitted with scalar indices")
        intrinsic = intrinsics.checked(loop, name)
        outer = dict(ex.vars)
        try:
            intrinsic.emit(_EmittedTile(self, ex, loop, in_parallel,
                                        loop.body if body is None else body))
        finally:
            ex.vars = outer

    def _annotation_metadata(self, loop: Loop) -> str | None:
        ann = dict(loop.annotations)
        step = ann.get("unroll_max_step") or ann.get("pragma_auto_unroll_max_step")
        if isinstance(step, int) and step > 1:
            return self.module.loop_metadata(f'!"llvm.loop.unroll.count", i32 {step}')
        return None

    def _bind(self, ex: ExprEmitter, var: str, base: Value, coeff: int | None = 0,
              align: int = 1) -> None:
        info = VarInfo(base, coeff, align=align)
        if ex.lanes and coeff:
            splat = ex.splat(base, ex.lanes)
            step = ex.iota(ex.lanes)
            if coeff != 1:
                step = ex.fn.op(f"mul {step.typed}, splat (i64 {coeff})", "int64", ex.lanes)
            info.vec = ex.fn.op(f"add {splat.typed}, {step.ref}", "int64", ex.lanes)
        ex.vars[var] = info

    def serial(
        self,
        ex: ExprEmitter,
        loop: Loop,
        in_parallel: bool,
        md: str | None,
        lo: Value | None = None,
        hi: Value | None = None,
        bind=None,
    ) -> None:
        """A counted loop over [lo, hi) (default [0, extent)); do-while form when non-empty.
        ``bind(value)`` binds the loop variable (default: to the counter)."""
        fn = ex.fn
        bind = bind or (lambda v: self._bind(ex, loop.var, v))
        if lo is None and loop.extent == 1:
            bind(Value("0", "int64"))
            self.nodes(ex, loop.body, in_parallel)
            return
        start = lo if lo is not None else Value("0", "int64")
        end = hi if hi is not None else Value(str(loop.extent), "int64")
        head, exit_ = fn.label(f"for.{_symbol(loop.var)}."), fn.label("end.")
        if lo is not None:  # dynamic bounds may be empty
            nonempty = fn.op(f"icmp slt {start.typed}, {end.ref}", "bool")
            fn.emit(f"br i1 {nonempty.ref}, label %{head}, label %{exit_}")
        else:
            fn.emit(f"br label %{head}")
        pred = fn.block
        fn.start_block(head)
        var = fn.fresh(_symbol(loop.var) + ".")
        phi_at = len(fn.lines)
        fn.lines.append("")  # the phi, filled in once the latch is known
        bind(Value(var, "int64"))
        self.nodes(ex, loop.body, in_parallel)
        nxt = fn.op(f"add nuw nsw i64 {var}, 1", "int64")
        more = fn.op(f"icmp slt i64 {nxt.ref}, {end.ref}", "bool")
        latch = fn.block
        tail = f", !llvm.loop {md}" if md else ""
        fn.emit(f"br i1 {more.ref}, label %{head}, label %{exit_}{tail}")
        fn.lines[phi_at] = f"  {var} = phi i64 [ {start.ref}, %{pred} ], [ {nxt.ref}, %{latch} ]"
        fn.start_block(exit_)

    def unrolled(self, ex: ExprEmitter, loop: Loop, in_parallel: bool) -> None:
        for k in range(loop.extent):
            self._bind(ex, loop.var, Value(str(k), "int64"))
            self.nodes(ex, loop.body, in_parallel)

    # ------------------------------------------------------------ vectorized loops

    def vectorized(self, ex: ExprEmitter, loop: Loop, in_parallel: bool) -> None:
        """The loop runs with its variable as a vector. A loop wider than the machine's
        vectors runs as native-width vectors one after another (LLVM legalizes odd widths
        like <24 x float> poorly); a very wide one as a loop over native-width vectors."""
        width = chunk_width(loop.extent, self.native_lanes)
        ex.lanes = width
        try:
            if loop.extent <= MAX_VECTOR_LANES:
                for start in range(0, loop.extent, width):
                    self._bind(ex, loop.var, Value(str(start), "int64"), coeff=1, align=width)
                    self.nodes(ex, loop.body, in_parallel)
            else:

                def bind(chunk: Value) -> None:
                    start = ex.fn.op(f"mul nuw nsw i64 {chunk.ref}, {width}", "int64")
                    self._bind(ex, loop.var, start, coeff=1, align=width)

                chunks = Loop(loop.var, loop.extent // width, loop.body)
                self.serial(ex, chunks, in_parallel, None, bind=bind)
        finally:
            ex.lanes = 0
            ex.mask = None

    # ------------------------------------------------------------ blocks

    def block(self, ex: ExprEmitter, block: Block) -> None:
        outer = dict(ex.vars)
        end_label = None
        saved_mask = ex.mask
        if block.predicate is not None:
            end_label = self._guard(ex, block.predicate)
        # Starts of compacted buffers are in loop variables: bind them before the iteration
        # variables, which may shadow loops. Likewise evaluate every binding before binding any.
        offsets = memory.offsets(ex, block)
        bound: list[tuple[str, Value, int | None, Value | None, int]] = [
            (name, ex.convert(ex.scalar(start, "int64"), "int64"),
             ex.coeff(start) if ex.lanes else 0, None, 1) for name, start in offsets]
        for iv, b in zip(block.iter_vars, block.bindings, strict=True):
            base = ex.convert(ex.scalar(b, "int64"), "int64")
            coeff = ex.coeff(b) if ex.lanes else 0
            vec = ex.as_vector(ex.emit(b, "int64")) if coeff is None else None
            bound.append((iv.name, base, coeff, vec, ex.align(b)))
        for name, base, coeff, vec, align in bound:
            if vec is not None:
                ex.vars[name] = VarInfo(base, None, vec)
            else:
                self._bind(ex, name, base, coeff, align)
        ex.fp_flags = "reassoc nsz contract" if block.reduction == "sum" else "contract"
        if block.init is not None:
            first = ops.all_of(*(ops.eq(E.Var(iv.name), 0) for iv in block.iter_vars if iv.reduce))
            init_end = self._guard(ex, first)
            memory.store(ex, block.init, None)
            self._close_guard(ex, init_end)
        memory.store(ex, block.body, block.reduction)
        ex.fp_flags = "contract"
        self._close_guard(ex, end_label)
        ex.mask = saved_mask
        ex.vars = outer

    def _guard(self, ex: ExprEmitter, cond: E.Expr) -> tuple[str, Value | None] | None:
        """Run what follows only where ``cond`` holds: a branch when it is the same for all
        lanes, else a narrower mask. Returns what :meth:`_close_guard` needs."""
        fn = ex.fn
        if ex.lanes and ex.depends(cond):
            c = ex.as_vector(ex.emit(cond, "bool"))
            saved = ex.mask
            ex.mask = c if saved is None else fn.op(f"and {saved.typed}, {c.ref}", "bool", ex.lanes)
            return ("mask", saved)
        c = ex.convert(ex.scalar(cond, "bool"), "bool")
        then_l, end_l = fn.label("then."), fn.label("endif.")
        fn.emit(f"br i1 {c.ref}, label %{then_l}, label %{end_l}")
        fn.start_block(then_l)
        return (end_l, None)

    def _close_guard(self, ex: ExprEmitter, guard) -> None:
        if guard is None:
            return
        label, saved = guard
        if label == "mask":
            ex.mask = saved
            return
        ex.fn.emit(f"br label %{label}")
        ex.fn.start_block(label)


class _EmittedTile:
    """The :class:`~.intrinsics.Tile` an intrinsic writes through: this emitter's state."""

    def __init__(self, emitter: KernelEmitter, ex: ExprEmitter, loop: Loop, in_parallel: bool,
                 body: tuple):
        self.loop = loop
        self.isa = emitter.ISA
        self._emitter, self._ex, self._in_parallel = emitter, ex, in_parallel
        self._body = body

    def value(self, e: E.Expr, dtype: str) -> str:
        return self._ex.convert(self._ex.scalar(e, dtype), dtype).typed

    def bind(self, var: str, value: int) -> None:
        self._emitter._bind(self._ex, var, Value(str(int(value)), "int64"))

    def body(self) -> None:
        self._emitter.nodes(self._ex, self._body, self._in_parallel)

    def line(self, text: str) -> None:
        self._ex.fn.emit(text)

    def declare(self, name: str, declaration: str) -> None:
        self._emitter.module.declare(name, declaration)
