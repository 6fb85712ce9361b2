"""A GPU program to NVVM IR, PTX and a cubin: the cuda target's code generator.

Lowering reads top to bottom: the lowering passes (:mod:`.passes`, as for the CPU), the kernel
plan (:mod:`.gpu_plan`: launch, races, cooperative copies, barriers, buffer layout), then
emission into one ``ptx_kernel`` function:

- inputs and outputs are ``ptr addrspace(1) noalias`` parameters (inputs ``readonly``, so
  their loads become ``ld.global.nc``), accessed through ``addrspace(1)`` pointers (no
  generic pointers: alignment and address spaces stay visible to LLVM);
- shared buffers are ``addrspace(3)`` globals, one array per buffer up to the 48 KB static
  limit, else slices of one ``external addrspace(3) global [0 x i8]`` sized at launch;
- local buffers are allocas, registers after SROA;
- ``threadIdx`` / ``blockIdx`` loops are reads of ``llvm.nvvm.read.ptx.sreg.tid.*`` /
  ``ctaid.*``, cooperative copies loops over ``tid, tid + n, ...``, barriers
  ``llvm.nvvm.barrier0``.

Blocks, expressions, loads and stores are the CPU emitter's (:mod:`.llvm`, :mod:`.exprs`,
:mod:`.memory`), in scalar context. Then the O3 pipeline and the NVPTX backend make PTX
(:func:`ptx_of`), and ``ptxas`` (when installed) a cubin and its resource report
(:mod:`.ptxas`). :func:`build_cuda` gives the :class:`~.gpu_kernel.GpuKernel` a runner
launches.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import cast

from ..errors import CodegenError
from ..ir import analysis, tree
from ..ir import expr as E
from ..ir.program import Block, Loop, LoopKind, Program, Scope, Store
from ..target import CudaTarget, resolve
from . import intrinsics, ptxas
from .buffers import BufferPlan
from .exprs import ExprEmitter
from .gpu_access import relative_accesses
from .gpu_kernel import GpuKernel, KernelLaunch
from .gpu_nodes import (
    KAllReduce,
    KBarrier,
    KBlock,
    KCoop,
    KLoop,
    KNode,
    KPrefetch,
    KThread,
    program_loop,
)
from .gpu_plan import KernelPlan, plan_kernels
from .gpu_reduce import SCRATCH, GpuExprEmitter
from .irtext import BYTES, Function, Module, Value, vec_type
from .lanes import VarInfo
from .llvm import MAX_UNROLL, KernelEmitter, _symbol
from .machine import nvptx_assembly
from .passes import PASSES, Pass, apply_passes
from .runtime import ArgSpec, KernelSignature

_SREG = {
    LoopKind.THREAD_X: "tid.x", LoopKind.THREAD_Y: "tid.y", LoopKind.THREAD_Z: "tid.z",
    LoopKind.BLOCK_X: "ctaid.x", LoopKind.BLOCK_Y: "ctaid.y", LoopKind.BLOCK_Z: "ctaid.z",
}
_AXES = (LoopKind.THREAD_X, LoopKind.THREAD_Y, LoopKind.THREAD_Z)


def lower_cuda(program: Program, target: CudaTarget, *, passes: tuple[Pass, ...] = PASSES
               ) -> tuple[str, KernelPlan, KernelSignature]:
    """NVVM IR text of ``program``'s kernels, the first one's plan and the signature."""
    text, plans, sig, _ = lower_kernels(program, target, passes=passes)
    return text, plans[0], sig


def lower_kernels(program: Program, target: CudaTarget, *, passes: tuple[Pass, ...] = PASSES
                  ) -> tuple[str, tuple[KernelPlan, ...], KernelSignature, tuple[ArgSpec, ...]]:
    """NVVM IR text of ``program``'s kernels (one per root-level nest, launched in order:
    the first named after the program, the others ``<name>_k1``, ...), their plans, the
    signature (inputs, outputs) and the workspace: the global intermediates that pass from
    one kernel to the next, device buffers every kernel takes after the outputs."""
    program = apply_passes(program, passes)
    plans = plan_kernels(program, target)
    module = Module()
    module.attributes = (f'attributes #0 = {{ nounwind "target-cpu"="{target.arch}" '
                         f'"target-features"="{target.ptx_features}" }}')
    used = {n for b in program.blocks() for n in (b.body.buffer, *analysis.buffers_read(b))}
    workspace = tuple(ArgSpec(b.name, b.shape, b.dtype, False) for b in program.buffers
                      if b.scope == Scope.GLOBAL and b.name in used)
    first = _symbol(program.name)
    for k, plan in enumerate(plans):
        _kernel(module, plan, first if k == 0 else f"{first}_k{k}", workspace, first=k == 0)
    args = [program.buffer(n) for n in (*program.inputs, *program.outputs)]
    sig = KernelSignature(
        first,
        tuple(ArgSpec(b.name, b.shape, b.dtype, b.name in program.outputs) for b in args),
    )
    return module.text(), plans, sig, workspace


def _kernel(module: Module, plan: KernelPlan, entry: str, workspace: tuple[ArgSpec, ...],
            *, first: bool) -> None:
    """One ``ptx_kernel`` function for ``plan``: inputs, outputs, then the workspace."""
    program = plan.program  # with the plan's own buffers (double buffering's registers)
    args = [program.buffer(n) for n in (*program.inputs, *program.outputs)]
    args += [program.buffer(w.name) for w in workspace]
    params = ", ".join(
        f"ptr addrspace(1) noalias {'readonly ' if b.name in program.inputs else ''}"
        f"align 16 %arg.{_symbol(b.name)}" for b in args)
    fn = Function(entry, params, attrs="#0", linkage="ptx_kernel ")
    module.functions.append(fn)
    ptrs: dict[str, str] = {b.name: f"%arg.{_symbol(b.name)}" for b in args}
    spaces = {b.name: "addrspace(1) " for b in args}
    emitter = GpuEmitter(module, program, entry, plan)
    if not first:
        emitter.shared_prefix = f"{entry}."
    emitter.allocate(fn, ptrs)
    spaces.update({a.name: "addrspace(3) " for a in plan.shared})
    ex = GpuExprEmitter(fn, module, program, ptrs, plan.plans)
    ex.kernel = emitter
    ex.spaces = spaces
    for var in plan.fixed_vars:
        emitter.bind_value(ex, var, Value("0", "int64"))
    axes = (LoopKind.BLOCK_X, LoopKind.BLOCK_Y, LoopKind.BLOCK_Z)
    for var, axis in plan.grid_vars:
        # a grid axis of one block is index 0, a constant LLVM folds: a register tile indexed
        # through a read of ctaid would stay in local memory
        one = plan.grid[axes.index(axis)] == 1
        emitter.bind_value(ex, var, Value("0", "int64") if one else emitter.sreg(fn, axis))
    emitter.knodes(ex, plan.body)
    fn.emit("ret void")


class GpuEmitter(KernelEmitter):
    """Emits a kernel plan's nodes; blocks and loops through the CPU emitter's methods."""

    ISA = "ptx"

    def __init__(self, module: Module, program: Program, entry: str, plan: KernelPlan):
        super().__init__(module, program, entry, plan.plans, native_lanes=1)
        self.plan = plan
        self.shared_prefix = ""  # a later kernel's shared arrays are symbols of its own
        self._sregs: dict[str, Value] = {}
        self._linear: Value | None = None

    # ------------------------------------------------------------ buffers and indices

    def allocate(self, fn: Function, ptrs: dict[str, str]) -> None:  # type: ignore[override]
        """Shared buffers as addrspace(3) globals (or slices of the dynamic array), local
        ones as allocas; a pointer to each in ``ptrs`` (accesses qualify them with their
        address space: ``ExprEmitter.spaces``)."""
        plan = self.plan
        if plan.dynamic_shared and plan.shared:
            self.module.declare("@shm_dyn", "@shm_dyn = external addrspace(3) global "
                                "[0 x i8], align 16")
        for a in plan.shared:
            dt = "float32" if a.name == SCRATCH else self.program.buffer(a.name).dtype
            sym = f"@shm_{self.shared_prefix}{_symbol(a.name)}"
            if plan.dynamic_shared:
                base = fn.fresh(f"shm.{_symbol(a.name)}.")
                fn.entry.append(f"  {base} = getelementptr inbounds i8, ptr addrspace(3) "
                                f"@shm_dyn, i64 {a.offset_bytes}")
                ptrs[a.name] = base
            else:
                n = a.nbytes // BYTES[dt]
                self.module.declare(sym, f"{sym} = internal addrspace(3) global "
                                    f"[{n} x {vec_type(dt, 0)}] undef, align 16")
                ptrs[a.name] = sym
        for name in plan.local:
            dt = self.program.buffer(name).dtype
            ptrs[name] = fn.alloca(f"buf.{_symbol(name)}.", vec_type(dt, 0),
                                   self.plans[name].size, align=16)

    def sreg(self, fn: Function, axis: LoopKind) -> Value:
        """The thread's (or block's) index on ``axis`` as i64, read once in the entry."""
        reg = _SREG[axis]
        if reg not in self._sregs:
            name = f"llvm.nvvm.read.ptx.sreg.{reg}"
            self.module.declare(name, f"declare i32 @{name}()")
            raw = fn.fresh(f"{reg.replace('.', '')}.")
            wide = fn.fresh(f"{reg.replace('.', '')}.w.")
            fn.entry.append(f"  {raw} = call i32 @{name}()")
            fn.entry.append(f"  {wide} = zext i32 {raw} to i64")
            self._sregs[reg] = Value(wide, "int64")
        return self._sregs[reg]

    def linear_thread(self, fn: Function) -> Value:
        """``tid.x + bx * (tid.y + by * tid.z)``: the thread's rank in its block."""
        if self._linear is None:
            bx, by, _ = self.plan.block
            acc: Value | None = None
            for axis, dim in zip(reversed(_AXES), (1, by, bx), strict=True):
                t = self.sreg(fn, axis) if self._dim(axis) > 1 else None
                if acc is not None and dim > 1:
                    r = fn.fresh("lin.")
                    fn.entry.append(f"  {r} = mul nuw nsw i64 {acc.ref}, {dim}")
                    acc = Value(r, "int64")
                if t is not None:
                    if acc is None:
                        acc = t
                    else:
                        r = fn.fresh("lin.")
                        fn.entry.append(f"  {r} = add nuw nsw i64 {acc.ref}, {t.ref}")
                        acc = Value(r, "int64")
            self._linear = acc if acc is not None else Value("0", "int64")
        return self._linear

    def _dim(self, axis: LoopKind) -> int:
        return self.plan.block[_AXES.index(axis)]

    def bind_value(self, ex: ExprEmitter, var: str, v: Value) -> None:
        self._bind(ex, var, v)

    # ------------------------------------------------------------ blocks

    def block(self, ex: ExprEmitter, block: Block) -> None:
        """A block; its accesses to compacted buffers are indexed by the difference of index
        and start simplified first (``(a*4 + b)*8 + c - (a*32 + b*8)`` is ``c``), computed
        before the block binds its iteration variables: LLVM does not always see it, and a
        register tile indexed at run time stays in (slow) local memory."""
        rel = relative_accesses(block, self.plans)
        if rel is None:
            super().block(ex, block)
            return
        rewritten, values = rel
        outer, plans = dict(ex.vars), ex.plans
        for name, value in values.items():
            ex.vars[name] = self._info(ex.convert(ex.scalar(value, "int64"), "int64"))
        # relative indices need no starts; the layout (storage_align's padded strides) stays
        ex.plans = {n: BufferPlan(p.shape, None, None, p.align) for n, p in plans.items()}
        try:
            super().block(ex, rewritten)
        finally:
            ex.vars, ex.plans = outer, plans

    # ------------------------------------------------------------ nodes

    def nodes(self, ex: ExprEmitter, nodes, in_parallel: bool) -> None:
        self.knodes(ex, nodes)

    def knodes(self, ex: ExprEmitter, nodes: tuple[KNode, ...]) -> None:
        fn = ex.fn
        for node in nodes:
            if isinstance(node, KBlock):
                self.block(ex, node.block)
            elif isinstance(node, KBarrier):
                self.barrier(fn)
            elif isinstance(node, KAllReduce):
                self.all_reduce(ex, node)
            elif isinstance(node, KPrefetch):
                self.prefetch(ex, node)
            elif isinstance(node, KThread):  # one thread on the axis: index 0, a constant
                self._bind(ex, node.var, Value("0", "int64") if node.extent == 1
                           else self.sreg(fn, node.axis))
                self.knodes(ex, node.body)
            elif isinstance(node, KCoop):
                self.cooperative(ex, node)
            else:
                self.kloop(ex, node)

    def barrier(self, fn: Function) -> None:
        self.module.declare("llvm.nvvm.barrier0", "declare void @llvm.nvvm.barrier0()")
        fn.emit("call void @llvm.nvvm.barrier0()")

    def all_reduce(self, ex: ExprEmitter, node: KAllReduce) -> None:
        """Each element of the thread's copy, combined across the threads (unrolled)."""
        outer = dict(ex.vars)
        for point in itertools.product(*(range(n) for _, n in node.loops)):
            for (var, _), k in zip(node.loops, point, strict=True):
                self._bind(ex, var, Value(str(k), "int64"))
            self.block(ex, node.block)
        ex.vars = outer

    def kloop(self, ex: ExprEmitter, node: KLoop) -> None:
        loop = cast(Loop, node)  # KLoop has the attributes the CPU emitter's loops read
        if (name := intrinsics.requested(node)) is not None:
            self.tensorized(ex, program_loop(node), name, False, node.body)
            return
        unroll = node.kind in (LoopKind.UNROLLED, LoopKind.VTHREAD)
        if unroll and node.extent <= MAX_UNROLL:
            self.unrolled(ex, loop, False)
        else:
            self.serial(ex, loop, False, self._annotation_metadata(loop))

    def prefetch(self, ex: ExprEmitter, node: KPrefetch) -> None:
        """The copy of the next step (``var`` + 1, if there is one): its loads into the
        thread's registers, or those registers into shared memory."""
        fn = ex.fn
        step = fn.op(f"add nuw nsw i64 {ex.vars[node.var].base.ref}, 1", "int64")
        more = fn.op(f"icmp slt i64 {step.ref}, {node.extent}", "bool")
        then_l, end_l = fn.label("db.next."), fn.label("db.done.")
        fn.emit(f"br i1 {more.ref}, label %{then_l}, label %{end_l}")
        fn.start_block(then_l)
        outer = dict(ex.vars)
        self._bind(ex, node.var, step)
        self.cooperative(ex, node.coop, (node.phase, node.slots))
        ex.vars = outer
        fn.emit(f"br label %{end_l}")
        fn.start_block(end_l)

    def cooperative(self, ex: ExprEmitter, node: KCoop,
                    phase: tuple[str, str] | None = None) -> None:
        """Thread ``t`` of ``n`` runs the fused iterations ``t + n * r``; the loop variables
        are the fused index's digits. ``phase`` (a double-buffered copy's "load" or "store",
        and its registers): each element goes to, or comes from, the thread's registers
        instead (the rounds unrolled, so that they are indexed by constants)."""
        fn = ex.fn
        n = self.plan.threads
        total = node.groups
        tid = self.linear_thread(fn)
        rounds = -(-total // n)
        outer = dict(ex.vars)
        loops = node.loops[:-1] if node.vector > 1 else node.loops

        def body(r: Value) -> None:
            f = fn.op(f"mul nuw nsw i64 {r.ref}, {n}", "int64") if r.ref != "0" else None
            fused = tid if f is None else fn.op(f"add nuw nsw i64 {f.ref}, {tid.ref}", "int64")
            ex.vars["@coop"] = self._info(fused)
            inner = 1
            for k, (var, extent) in enumerate(reversed(loops)):
                q = E.binary("//", E.Var("@coop"), inner) if inner > 1 else E.Var("@coop")
                digit = q if k == len(loops) - 1 else E.binary("%", q, extent)
                self._bind(ex, var, ex.convert(ex.scalar(digit, "int64"), "int64"))
                inner *= extent
            block = node.block
            if total % n:
                guard = E.Compare("<", E.Var("@coop"), E.Const(total))
                block = _with_guard(block, guard)
            if node.vector == 1:
                self.block(ex, _phased(block, phase, int(r.ref) if phase else 0))
                return
            lane_var = node.loops[-1][0]
            for lane in range(node.vector):  # consecutive: LLVM makes them one vector access
                self._bind(ex, lane_var, Value(str(lane), "int64"))
                slot = int(r.ref) * node.vector + lane if phase else 0
                self.block(ex, _phased(block, phase, slot))

        if rounds == 1 or phase is not None:
            for k in range(rounds):
                body(Value(str(k), "int64"))
        else:
            loop = Loop(f"coop.{node.block.name}", rounds, ())
            self.serial(ex, loop, False, None, bind=body)
        ex.vars = outer

    def _info(self, v: Value) -> VarInfo:
        return VarInfo(v, 0)


def _phased(block: Block, phase: tuple[str, str] | None, slot: int) -> Block:
    """A copy's block as one half of a double-buffered copy: its value stored into register
    ``slot`` ("load"), or register ``slot`` stored where the copy writes ("store")."""
    if phase is None:
        return block
    kind, slots = phase
    at = (E.Const(slot),)
    if kind == "load":
        return replace(block, body=Store(slots, at, block.body.value))
    return replace(block, body=Store(block.body.buffer, block.body.indices, E.Load(slots, at)))


def _with_guard(block: Block, guard: E.Expr) -> Block:
    return tree.add_predicate(block, guard)


def ptx_of(ir_text: str, target: CudaTarget) -> str:
    """PTX of NVVM IR text: the O3 pipeline, then the NVPTX backend."""
    return nvptx_assembly(ir_text, target)


def build_cuda(program: Program, target: CudaTarget | str | None = "cuda", *,
               passes: tuple[Pass, ...] = PASSES, run_ptxas: bool = True,
               max_local_bytes: int | None = 0) -> GpuKernel:
    """Compile ``program`` for ``target``: PTX, and the cubin and resource report of
    ``ptxas`` when it is installed (and ``run_ptxas``). The report is a static filter before
    any measurement: a kernel whose threads need more registers than a block has is refused,
    and so is one whose threads keep more than ``max_local_bytes`` in local memory (spill
    stores and the stack frame, where a register tile indexed at run time would live; None:
    no limit): such a tile runs from memory, slower than a smaller one in registers."""
    t0 = time.perf_counter()
    t = resolve(target)
    if not isinstance(t, CudaTarget):
        raise CodegenError(f"build_cuda builds for a cuda target, not {t.describe()}")
    ir_text, plans, sig, workspace = lower_kernels(program, t, passes=passes)
    ptx = ptx_of(ir_text, t)
    entries = [sig.entry, *(f"{sig.entry}_k{k}" for k in range(1, len(plans)))]
    cubin, report = None, None
    if run_ptxas and ptxas.available():
        cubin, reports = ptxas.assemble_all(ptx, t, entries)
        for plan, entry, rep in zip(plans, entries, reports, strict=True):
            ptxas.check_resources(rep, plan.threads, t, entry, max_local_bytes)
        report = max(reports, key=lambda r: r.registers)
    launches = [KernelLaunch(e, p.grid, p.block, p.shared_bytes if p.dynamic_shared else 0)
                for e, p in zip(entries, plans, strict=True)]
    first = launches[0]
    return GpuKernel(sig.entry, ptx, cubin, first.grid, first.block,
                     first.dynamic_shared_bytes, sig, t, time.perf_counter() - t0, report,
                     tuple(launches[1:]), workspace)

