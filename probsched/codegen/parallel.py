"""Parallel loops: outlined into a function that libgomp's ``GOMP_parallel`` runs on every
thread, each over a contiguous static share of the iterations.

The caller packs what the loop body needs into a context struct: pointers of the shared
buffers and the values of the enclosing scalar variables (variables known to be constants stay
constants). libgomp calls a trampoline with it, which unpacks it, computes the thread's share
and calls the loop as a function of its own, its buffer parameters ``noalias``; intermediates
placed inside the loop (:mod:`.buffers`) are allocated there, private to each thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import expr as E
from ..ir.program import Loop, Node
from .irtext import Function, Module, Value
from .lanes import VarInfo

if TYPE_CHECKING:
    from .exprs import ExprEmitter
    from .llvm import KernelEmitter


def outline(em: KernelEmitter, ex: ExprEmitter, loop: Loop) -> None:
    """Emit parallel ``loop`` (at ``ex``'s position) as a ``GOMP_parallel`` call of an
    outlined function; every libgomp thread runs a contiguous share of iterations."""
    fn = ex.fn
    em.n_outlined += 1
    name = f"{em.entry}.par{em.n_outlined}"
    used = buffers_used(loop.body)
    private = [n for n in used if n in em.plans and em.plans[n].parallel_loop == loop.var]
    shared = [n for n in used if n not in private]
    # Variables known to be constants (loops of extent 1) stay constants inside: passed
    # through the context they would hide that two accesses differ by a constant, and
    # LLVM would no longer keep an accumulator tile in registers across a k loop.
    constants = {v: i for v, i in ex.vars.items() if i.coeff == 0 and _is_literal(i.base)}
    scalars = [v for v in ex.vars if ex.vars[v].coeff == 0 and v not in constants]
    fields = ["ptr"] * len(shared) + ["i64"] * len(scalars)
    struct = "{ " + ", ".join(fields) + " }" if fields else "{ i8 }"
    ctx = fn.alloca("ctx.", struct, 1, align=8)
    for k, n in enumerate(shared):
        slot = fn.op(f"getelementptr inbounds {struct}, ptr {ctx}, i32 0, i32 {k}", "int64")
        fn.emit(f"store ptr {ex.ptrs[n]}, ptr {slot.ref}, align 8")
    for k, v in enumerate(scalars, start=len(shared)):
        slot = fn.op(f"getelementptr inbounds {struct}, ptr {ctx}, i32 0, i32 {k}", "int64")
        fn.emit(f"store i64 {ex.vars[v].base.ref}, ptr {slot.ref}, align 8")
    em.module.declare("GOMP_parallel", "declare void @GOMP_parallel(ptr, ptr, i32, i32)")
    fn.emit(f"call void @GOMP_parallel(ptr @{name}, ptr {ctx}, i32 0, i32 0)")

    # The trampoline libgomp calls unpacks the context and computes this thread's share;
    # the loop itself is a function of its own whose buffer parameters are noalias (a
    # pointer loaded from the context would lose that, and with it vectorization and
    # register promotion of accumulators).
    tramp = Function(name, "ptr noalias %ctx", attrs="#0", linkage="internal ")
    em.module.functions.append(tramp)
    args = []
    for k in range(len(shared)):
        slot = tramp.op(f"getelementptr inbounds {struct}, ptr %ctx, i32 0, i32 {k}", "int64")
        args.append("ptr " + tramp.op(f"load ptr, ptr {slot.ref}, align 8", "int64").ref)
    for k, _ in enumerate(scalars, start=len(shared)):
        slot = tramp.op(f"getelementptr inbounds {struct}, ptr %ctx, i32 0, i32 {k}", "int64")
        args.append("i64 " + tramp.op(f"load i64, ptr {slot.ref}, align 8", "int64").ref)
    lo, hi = _thread_share(em.module, tramp, loop.extent)
    args += [lo.typed, hi.typed]
    tramp.emit(f"call void @{name}.loop({', '.join(args)})")
    tramp.emit("ret void")

    params = [f"ptr noalias %p{k}" for k in range(len(shared))]
    params += [f"i64 %s{k}" for k in range(len(scalars))] + ["i64 %lo", "i64 %hi"]
    body = Function(f"{name}.loop", ", ".join(params), attrs="#0", linkage="internal ")
    em.module.functions.append(body)
    inner_ptrs = {n: f"%p{k}" for k, n in enumerate(shared)}
    heap = em.allocate(body, inner_ptrs, private)  # private to each thread
    inner = em.emitter(body, inner_ptrs)
    inner.vars = {v: VarInfo(Value(f"%s{k}", "int64"), 0) for k, v in enumerate(scalars)}
    inner.vars.update(constants)
    md = em._annotation_metadata(loop)
    em.serial(inner, loop, True, md, lo=Value("%lo", "int64"), hi=Value("%hi", "int64"))
    em.free(body, heap)
    body.emit("ret void")

def _thread_share(module: Module, fn: Function, extent: int) -> tuple[Value, Value]:
    """[lo, hi) of this thread under a static schedule: the first (extent % threads)
    threads take one iteration more."""
    module.declare("omp_get_thread_num", "declare i32 @omp_get_thread_num()")
    module.declare("omp_get_num_threads", "declare i32 @omp_get_num_threads()")
    tid = fn.op("call i32 @omp_get_thread_num()", "int32")
    nth = fn.op("call i32 @omp_get_num_threads()", "int32")
    tid64 = fn.op(f"sext i32 {tid.ref} to i64", "int64")
    nth64 = fn.op(f"sext i32 {nth.ref} to i64", "int64")
    q = fn.op(f"sdiv i64 {extent}, {nth64.ref}", "int64")
    r = fn.op(f"srem i64 {extent}, {nth64.ref}", "int64")
    extra = fn.op(f"icmp slt i64 {tid64.ref}, {r.ref}", "bool")
    q1 = fn.op(f"add i64 {q.ref}, 1", "int64")
    size = fn.op(f"select i1 {extra.ref}, i64 {q1.ref}, i64 {q.ref}", "int64")
    off = fn.op(f"select i1 {extra.ref}, i64 0, i64 {r.ref}", "int64")
    base = fn.op(f"mul i64 {tid64.ref}, {size.ref}", "int64")
    lo = fn.op(f"add i64 {base.ref}, {off.ref}", "int64")
    hi = fn.op(f"add i64 {lo.ref}, {size.ref}", "int64")
    return lo, hi


def _is_literal(value: Value) -> bool:
    return value.ref.lstrip("-").isdigit()


def buffers_used(nodes: tuple[Node, ...]) -> list[str]:
    """Buffers the blocks under ``nodes`` store to or load from, in order of appearance."""
    seen: dict[str, None] = {}

    def visit_expr(e: E.Expr) -> None:
        for ld in E.loads(e):
            seen.setdefault(ld.tensor)

    def visit(ns) -> None:
        for n in ns:
            if isinstance(n, Loop):
                visit(n.body)
                continue
            for st in (n.init, n.body):
                if st is not None:
                    seen.setdefault(st.buffer)
                    visit_expr(st.value)
                    for ix in st.indices:
                        visit_expr(ix)
            if n.predicate is not None:
                visit_expr(n.predicate)
            for b in n.bindings:
                visit_expr(b)

    visit(nodes)
    return list(seen)
