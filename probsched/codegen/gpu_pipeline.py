"""Register double buffering of shared tiles in a GPU kernel plan (:mod:`.gpu_plan`).

A loop annotated ``double_buffer = 1`` (the schedule's ``annotate``) whose body starts with
cooperative copies into shared memory, then a barrier, is rewritten so that the global loads
of the next step's tiles are in flight while the current step computes:

    before:  for k: copy A(k), B(k) -> shared; barrier; compute(k)
    after:   copy A(0), B(0) -> shared; barrier
             for k: load A(k+1), B(k+1) -> registers; compute(k); barrier;
                    store the registers -> shared; barrier

Each thread keeps its share of a copy (its rounds x vector elements) in a local buffer
``<shared>_db``, registers after SROA. The loads and stores are :class:`~.gpu_nodes.KPrefetch`
nodes; emission unrolls a copy's rounds so that the registers are indexed by constants.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import CodegenError
from ..ir import analysis
from ..ir.program import Buffer, Program, Scope
from .buffers import BufferPlan
from .gpu_nodes import KBarrier, KBlock, KCoop, KLoop, KNode, KPrefetch, KThread, walk

ANNOTATION = "double_buffer"
MAX_SLOTS = 64  # registers one thread may hold for one copy


def double_buffer(nodes: tuple[KNode, ...], program: Program, threads: int
                  ) -> tuple[tuple[KNode, ...], list[Buffer], dict[str, BufferPlan]]:
    """``nodes`` with every annotated loop double-buffered, and the local buffers (with
    their plans) that hold each thread's share of the next tiles."""
    buffers: list[Buffer] = []
    plans: dict[str, BufferPlan] = {}

    def walk(seq: tuple[KNode, ...]) -> tuple[KNode, ...]:
        out: list[KNode] = []
        for node in seq:
            if isinstance(node, KThread):
                out.append(replace(node, body=walk(node.body)))
            elif isinstance(node, KLoop) and _wanted(node):
                out.extend(_rewrite(replace(node, body=walk(node.body)), program, threads,
                                    buffers, plans))
            elif isinstance(node, KLoop):
                out.append(replace(node, body=walk(node.body)))
            else:
                out.append(node)
        return tuple(out)

    return walk(nodes), buffers, plans


def _wanted(loop: KLoop) -> bool:
    value = dict(loop.annotations).get(ANNOTATION, 0)
    return bool(value) and loop.extent > 1


def _rewrite(loop: KLoop, program: Program, threads: int, buffers: list[Buffer],
             plans: dict[str, BufferPlan]) -> list[KNode]:
    body = list(loop.body)
    k = 0
    while k < len(body) and isinstance(body[k], KBarrier):
        k += 1
    copies: list[KCoop] = []
    while k < len(body) and isinstance(body[k], KCoop):
        copies.append(body[k])  # type: ignore[arg-type]
        k += 1
    if not copies or k == len(body) or not isinstance(body[k], KBarrier):
        raise CodegenError(f"loop {loop.var} is annotated {ANNOTATION} but its body does not "
                           "start with cooperative copies into shared memory and a barrier "
                           "(cache_read to shared, computed at this loop)")
    rest = body[k + 1:]
    names = set()
    for c in copies:
        dst = program.buffer(c.block.body.buffer)
        if dst.scope != Scope.SHARED or any(program.buffer(b).scope == Scope.SHARED
                                            for b in analysis.buffers_read(c.block)):
            raise CodegenError(f"loop {loop.var} is annotated {ANNOTATION}, but its copy "
                               f"{c.block.name} does not copy global memory into shared")
        names.add(dst.name)
    for node in walk(rest):
        if isinstance(node, KBlock | KCoop) and node.block.body.buffer in names:
            raise CodegenError(f"loop {loop.var} is annotated {ANNOTATION}, but block "
                               f"{node.block.name} writes {node.block.body.buffer} after "
                               "the copies")
    loads, stores = [], []
    for c in copies:
        slots = -(-c.groups // threads) * c.vector
        if slots > MAX_SLOTS:
            raise CodegenError(f"loop {loop.var} is annotated {ANNOTATION}, but copy "
                               f"{c.block.name} would hold {slots} elements per thread in "
                               f"registers (at most {MAX_SLOTS}): use more threads")
        dst = program.buffer(c.block.body.buffer)
        name = f"{dst.name}_db"
        buffers.append(Buffer(name, (slots,), dst.dtype, Scope.LOCAL))
        plans[name] = BufferPlan((slots,), None, None)
        loads.append(KPrefetch(c, loop.var, loop.extent, "load", name))
        stores.append(KPrefetch(c, loop.var, loop.extent, "store", name))
    prologue = KLoop(loop.var, 1, loop.kind, tuple(copies))  # the first step's tiles
    steady = (*loads, *rest, KBarrier(f"{', '.join(sorted(names))} read, then written again"),
              *stores, KBarrier(f"{', '.join(sorted(names))} written, then read"))
    return [prologue, KBarrier(f"{', '.join(sorted(names))} written, then read"),
            replace(loop, body=steady)]
