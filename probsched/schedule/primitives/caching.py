"""Caching primitives: cache_read and cache_write, and the storage of what they make
(set_scope, storage_align, transform_layout).

Both add a buffer of the full logical shape (the codegen compacts local buffers to the region
used) and a copy block in a root-level loop nest of its own; compute_at and reverse_compute_at
then move the copy next to its use. Copies are indexed exactly like the original buffer, so no
primitive ever computes offsets into a cache; transform_layout only permutes its axes.
"""

from __future__ import annotations

from dataclasses import replace

from ...ir import analysis, tree
from ...ir import expr as E
from ...ir.program import Block, Buffer, IterVar, Loop, Node, Program, Scope, Store

SCOPES = {"local": Scope.LOCAL, "global": Scope.GLOBAL, "shared": Scope.SHARED}


def _scope(scope: object) -> Scope:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    return SCOPES[scope]


def _block(program: Program, name: str) -> tuple[tree.Path, Block]:
    path = tree.find_block(program, name)
    if path is None:
        raise ValueError(f"no block {name} in the program")
    return path, tree.block_at(program, path)


def reads_in_order(block: Block) -> list[str]:
    """The buffers ``block`` reads, in order of first appearance (body, then init), not
    counting a reduction's read of its own output: what ``cache_read``'s index counts."""
    out: list[str] = []
    for st in (block.body, block.init):
        if st is None:
            continue
        for ld in E.loads(st.value):
            own = ld.tensor == st.buffer and ld.indices == st.indices
            if not own and ld.tensor not in out:
                out.append(ld.tensor)
    return out


def _fresh_buffer(program: Program, base: str) -> str:
    """A name free among buffers and blocks (a cache_read copy block is named after it)."""
    taken = {b.name for b in program.buffers} | {b.name for b in program.blocks()}
    return tree.fresh_name(base, taken)


def copy_nest(program: Program, name: str, src: str, dst: str) -> Node:
    """A root-level nest running block ``name``: ``dst[v...] = src[v...]`` over ``dst``'s
    whole shape. Its loops are named like the iteration variables (``v0``, ``v1``, ...; fresh
    in ``program``), as lowering names loops after axes; compute_at's loops are ``ax<k>``."""
    shape = program.buffer(dst).shape
    taken = tree.loop_vars(program)
    loops = []
    for d in range(len(shape)):
        var = tree.fresh_name(f"v{d}", taken)
        taken.add(var)
        loops.append(var)
    index = tuple(E.Var(f"v{d}") for d in range(len(shape)))
    node: Node = Block(
        name,
        tuple(IterVar(f"v{d}", n) for d, n in enumerate(shape)),
        tuple(E.Var(v) for v in loops),
        Store(dst, index, E.Load(src, index)),
    )
    for var, n in reversed(list(zip(loops, shape, strict=True))):
        node = Loop(var, n, (node,))
    return node


def _rename_reads(st: Store, mapping: dict[str, str]) -> Store:
    return replace(st, value=E.rename_loads(st.value, mapping))


def _others_in_nest(program: Program, path: tree.Path, name: str) -> list[Block]:
    """The other blocks in the root-level nest holding the node at ``path``."""
    return [b for b in tree.blocks_under(program.body[path[0]]) if b.name != name]


def cache_read(program: Program, name: str, buffer: str | int, scope: str
               ) -> tuple[Program, str]:
    """Block ``name`` reads a ``scope`` copy of ``buffer`` (a name, or an index into
    :func:`reads_in_order`); the copy is made by a new block, named after the new buffer, in
    a nest placed right before the root-level nest holding ``name``."""
    path, block = _block(program, name)
    kind = _scope(scope)
    reads = reads_in_order(block)
    if isinstance(buffer, int) and not isinstance(buffer, bool):
        if not 0 <= buffer < len(reads):
            raise ValueError(f"block {name} reads {len(reads)} buffer(s) ({', '.join(reads)}); "
                             f"there is no read {buffer}")
        buffer = reads[buffer]
    if buffer not in reads:
        raise ValueError(f"block {name} does not read buffer {buffer!r}; it reads "
                         f"{', '.join(reads) or 'nothing'}")
    for other in _others_in_nest(program, path, name):
        if other.body.buffer == buffer:
            raise ValueError(f"{buffer} is written by block {other.name} in the loop nest of "
                             f"block {name}; the copy would come before it")
    src = program.buffer(buffer)
    new = _fresh_buffer(program, f"{buffer}_{scope}")
    mapping = {buffer: new}
    init = block.init
    block = replace(block, body=_rename_reads(block.body, mapping),
                    init=None if init is None else _rename_reads(init, mapping))
    program = tree.replace_at(program, path, (block,))
    program = replace(program, buffers=(*program.buffers, Buffer(new, src.shape, src.dtype, kind)))
    nest = copy_nest(program, new, buffer, new)
    return tree.insert_at(program, (path[0],), (nest,)), new


def cache_write(program: Program, name: str, scope: str) -> tuple[Program, str]:
    """Block ``name`` writes (init and body) a new ``scope`` buffer instead of its own; a new
    write-back block ``<name>_wb`` copies it back, in a nest placed right after the
    root-level nest holding ``name``."""
    path, block = _block(program, name)
    kind = _scope(scope)
    buffer = block.body.buffer
    dst = program.buffer(buffer)
    if dst.scope == Scope.INPUT:
        raise ValueError(f"block {name} writes input {buffer}")
    for other in program.blocks():
        if other.name != name and other.body.buffer == buffer:
            raise ValueError(f"{buffer} is also written by block {other.name}")
    for other in _others_in_nest(program, path, name):
        if buffer in analysis.buffers_read(other):
            raise ValueError(f"block {other.name} reads {buffer} in the loop nest of block "
                             f"{name}, before the write-back")
    new = _fresh_buffer(program, f"{buffer}_{scope}")
    mapping = {buffer: new}

    def retarget(st: Store) -> Store:
        return Store(new, st.indices, E.rename_loads(st.value, mapping))

    init = block.init
    block = replace(block, body=retarget(block.body),
                    init=None if init is None else retarget(init))
    program = tree.replace_at(program, path, (block,))
    program = replace(program, buffers=(*program.buffers, Buffer(new, dst.shape, dst.dtype, kind)))
    wb = tree.fresh_name(f"{name}_wb", {b.name for b in program.blocks()})
    nest = copy_nest(program, wb, new, buffer)
    return tree.insert_at(program, (path[0] + 1,), (nest,)), wb


def set_scope(program: Program, name: str, scope: str) -> Program:
    """The intermediate buffer block ``name`` writes lives in ``scope`` ("local", "shared" or
    "global"); the loops and blocks stay as they are."""
    _, block = _block(program, name)
    kind = _scope(scope)
    buffer = block.body.buffer
    buf = program.buffer(buffer)
    if buf.scope in (Scope.INPUT, Scope.OUTPUT):
        raise ValueError(f"block {name} writes {buf.scope.value} {buffer}; only an "
                         "intermediate buffer's scope can be set (cache_write the output)")
    buffers = tuple(replace(b, scope=kind) if b.name == buffer else b
                    for b in program.buffers)
    return replace(program, buffers=buffers)


def storage_align(program: Program, name: str, axis: int, factor: int, offset: int
                  ) -> Program:
    """Pad the stride of ``axis`` of the shared buffer block ``name`` writes up to
    ``offset`` mod ``factor`` elements (a negative axis counts from the end), so that the
    rows of a shared tile start in different memory banks."""
    _, block = _block(program, name)
    buf = program.buffer(block.body.buffer)
    if buf.scope != Scope.SHARED:
        raise ValueError(f"block {name} writes {buf.scope.value} {buf.name}; storage_align "
                         "pads a shared buffer (cache_read or cache_write it to shared first)")
    ndim = len(buf.shape)
    k = axis + ndim if axis < 0 else axis
    if not 0 <= k < ndim - 1:
        raise ValueError(f"axis {axis} of {buf.name} (rank {ndim}) has no stride to pad: an "
                         f"axis from {-ndim} to {ndim - 2} other than the last")
    if factor < 1 or not 0 <= offset < factor:
        raise ValueError(f"factor {factor} and offset {offset}: need factor >= 1 and "
                         "0 <= offset < factor")
    align = tuple(a for a in buf.align if a[0] != k) + ((k, factor, offset),)
    buffers = tuple(replace(b, align=align) if b.name == buf.name else b
                    for b in program.buffers)
    return replace(program, buffers=buffers)


def transform_layout(program: Program, name: str, order: tuple[int, ...]) -> Program:
    """The intermediate buffer block ``name`` writes stored with its axes in ``order``
    (axis ``k`` of the new layout is axis ``order[k]`` of the old): its shape and every
    access to it permuted, the loops and the values unchanged. A shared tile of A read
    column by column (``[1, 0]``) then gives a thread's rows as one vector access."""
    _, block = _block(program, name)
    buf = program.buffer(block.body.buffer)
    if buf.scope in (Scope.INPUT, Scope.OUTPUT):
        raise ValueError(f"block {name} writes {buf.scope.value} {buf.name}; only an "
                         "intermediate's layout can change (cache_read or cache_write first)")
    ndim = len(buf.shape)
    if sorted(order) != list(range(ndim)):
        raise ValueError(f"{list(order)} is not an order of the {ndim} axes of {buf.name} "
                         f"(a permutation of 0..{ndim - 1})")
    if buf.align:
        raise ValueError(f"{buf.name} is padded already (storage_align): change its layout "
                         "first, then pad it")

    def permuted(indices: tuple[E.Expr, ...]) -> tuple[E.Expr, ...]:
        return tuple(indices[k] for k in order)

    def load(e: E.Expr) -> E.Expr | None:
        if isinstance(e, E.Load) and e.tensor == buf.name:
            return E.Load(e.tensor, permuted(e.indices))  # (indices rewritten already)
        return None

    def load_all(e: E.Expr) -> E.Expr:
        return E.transform(e, load)

    def store(st: Store) -> Store:
        indices = permuted(st.indices) if st.buffer == buf.name else st.indices
        return replace(st, indices=indices, value=load_all(st.value))

    def rewrite(b: Block) -> Block:
        pred = None if b.predicate is None else load_all(b.predicate)
        return replace(b, body=store(b.body), init=None if b.init is None else store(b.init),
                       predicate=pred)

    body = tuple(tree.map_blocks(node, rewrite) for node in program.body)
    shape = tuple(buf.shape[k] for k in order)
    buffers = tuple(replace(b, shape=shape) if b.name == buf.name else b
                    for b in program.buffers)
    return replace(program, body=body, buffers=buffers)
