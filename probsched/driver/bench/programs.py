"""Hand-built loop nests: set loops and bindings directly, for codegen tests and the
foundation benchmarks (the schedule primitives build these properly)."""

from __future__ import annotations

from dataclasses import replace

from ...ir import lower
from ...ir.expr import Const, Expr, Load, Var
from ...ir.intervals import bounds
from ...ir.ops import all_of
from ...ir.program import Block, Buffer, IterVar, Loop, LoopKind, Program, Scope, Store
from ...workloads import gmm


def renest(
    program: Program,
    block: str,
    loops: list[tuple[str, int, LoopKind]],
    bindings: dict[str, Expr],
    *,
    guard: bool = True,
) -> Program:
    """Replace the loop nest around ``block`` (a root-level nest) by ``loops`` (outermost
    first), binding iteration variables to ``bindings``. With ``guard``, a predicate keeps
    each binding below its iteration extent (partial tiles)."""
    index, blk = None, None
    for k, node in enumerate(program.body):
        found = _find(node, block)
        if found is not None:
            index, blk = k, found
    if index is None or blk is None:
        raise KeyError(block)
    conds = []
    new_bindings = []
    ranges = {name: (0, extent - 1) for name, extent, _ in loops}
    for iv, old in zip(blk.iter_vars, blk.bindings, strict=True):
        b = bindings.get(iv.name, old)
        new_bindings.append(b)
        hi = bounds(b, ranges)
        if guard and iv.name in bindings and (hi is None or hi[1] >= iv.extent):
            conds.append(b < iv.extent)
    pred = all_of(*conds) if conds else None
    node = replace(blk, bindings=tuple(new_bindings), predicate=pred)
    for name, extent, kind in reversed(loops):
        node = Loop(name, extent, (node,), kind)
    body = list(program.body)
    body[index] = node
    return program.with_body(tuple(body))


def _find(node, name: str) -> Block | None:
    if isinstance(node, Block):
        return node if node.name == name else None
    for child in node.body:
        found = _find(child, name)
        if found is not None:
            return found
    return None


def set_kind(program: Program, var: str, kind: LoopKind) -> Program:
    """``program`` with loop ``var`` made of ``kind``."""

    def visit(nodes):
        out = []
        for n in nodes:
            if isinstance(n, Loop):
                n = replace(n, body=visit(n.body), kind=kind if n.var == var else n.kind)
            out.append(n)
        return tuple(out)

    return program.with_body(visit(program.body))


def tiled_matmul(
    n: int, m: int, k: int, ti: int, tj: int, kinds: dict[str, LoopKind] | None = None
):
    """GMM (batch 1) as loops ``io, jo, kk, ii, ji`` over ``ti x tj`` tiles, with loop kinds
    from ``kinds`` (e.g. ``{"ji": VECTORIZED, "ii": UNROLLED, "io": PARALLEL}``); returns
    (workload, program)."""
    kinds = kinds or {}
    wl = gmm(b=1, n=n, m=m, k=k)
    io, ii, jo, ji, kk = (Var(v) for v in ("io", "ii", "jo", "ji", "kk"))
    loops = [("io", -(-n // ti)), ("jo", -(-m // tj)), ("kk", k), ("ii", ti), ("ji", tj)]
    spec = [(v, e, kinds.get(v, LoopKind.SERIAL)) for v, e in loops]
    bindings = {"b": Const(0), "i": io * ti + ii, "j": jo * tj + ji, "k": kk}
    return wl, renest(lower(wl), "C", spec, bindings)


def register_tile_matmul(n=16, m=32, k=24, ti=4, tj=16):
    """C = A @ B through a local accumulator per ti x tj tile (what cache_write +
    reverse_compute_at produce). The accumulator has C's full shape in the program; codegen
    compacts it to the tile, which then lives in registers."""
    wl = gmm(b=1, n=n, m=m, k=k)
    base = lower(wl)
    io, jo, kk, ii, ji, ii2, ji2 = (Var(v) for v in ("io", "jo", "kk", "ii", "ji", "ii2", "ji2"))
    i, j, r = Var("i"), Var("j"), Var("k")
    a, b = Load("A", (Const(0), i, r)), Load("B", (Const(0), r, j))
    update = Block(
        "acc",
        (IterVar("i", n), IterVar("j", m), IterVar("k", k, reduce=True)),
        (io * ti + ii, jo * tj + ji, kk),
        Store("acc", (i, j), Load("acc", (i, j)) + a * b),
        init=Store("acc", (i, j), Const(0.0)),
        reduction="sum",
    )
    write = Block(
        "C",
        (IterVar("i", n), IterVar("j", m)),
        (io * ti + ii2, jo * tj + ji2),
        Store("C", (Const(0), i, j), Load("acc", (i, j))),
    )
    vec, unr = LoopKind.VECTORIZED, LoopKind.UNROLLED
    compute = Loop("kk", k, (Loop("ii", ti, (Loop("ji", tj, (update,), vec),), unr),))
    store = Loop("ii2", ti, (Loop("ji2", tj, (write,), vec),), unr)
    nest = Loop("io", n // ti, (Loop("jo", m // tj, (compute, store)),), LoopKind.PARALLEL)
    buffers = (*base.buffers, Buffer("acc", (n, m), "float32", Scope.LOCAL))
    return wl, Program(base.name, buffers, (nest,), base.inputs, base.outputs)
