"""Inlining primitives: compute_inline and reverse_compute_inline.

compute_inline substitutes a producer's expression into its readers; reverse_compute_inline
folds an elementwise consumer into its producer's store. Both remove a block, the loops that
held only it, and the intermediate buffer that linked the two blocks. Semantics follow TVM
TensorIR; each function raises ``ValueError`` with the reason when the step is illegal.
"""

from __future__ import annotations

from dataclasses import replace

from ...ir import analysis, tree
from ...ir import expr as E
from ...ir.program import Block, Program, Scope, Store

# ---------------------------------------------------------------- shared helpers


def find(program: Program, name: str) -> tuple[tree.Path, Block]:
    """Path and node of the block ``name``."""
    path = tree.find_block(program, name)
    if path is None:
        raise ValueError(f"no block {name} in the program")
    return path, tree.block_at(program, path)


def remove_block(program: Program, path: tree.Path) -> Program:
    """The program without the block at ``path`` and without the loops left empty by that."""
    while True:
        program = tree.replace_at(program, path, ())
        parent = path[:-1]
        if not parent or tree.loop_at(program, parent).body:
            return program
        path = parent


def drop_buffer(program: Program, name: str) -> Program:
    buffers = tuple(b for b in program.buffers if b.name != name)
    return replace(program, buffers=buffers)


def writers(program: Program, buffer: str) -> list[Block]:
    return [b for b in program.blocks() if b.body.buffer == buffer]


def readers(program: Program, buffer: str) -> list[Block]:
    """Blocks loading ``buffer``, not counting a reduction's read of its own element."""
    return [b for b in program.blocks() if buffer in analysis.buffers_read(b)]


def store_vars(block: Block) -> list[str] | None:
    """The iteration variables the block stores at, by dimension, when its store indices
    are its iteration variables each once (in any order); else None."""
    idx = block.body.indices
    names = [i.name for i in idx if isinstance(i, E.Var)]
    ivs = {iv.name for iv in block.iter_vars}
    if len(names) != len(idx) or len(set(names)) != len(names) or set(names) != ivs:
        return None
    return names


def is_reduction(block: Block) -> bool:
    """A reduction, decomposed or not (then it has no init but still reduces)."""
    return (block.init is not None or block.reduction is not None
            or any(iv.reduce for iv in block.iter_vars))


def elementwise_error(block: Block, role: str) -> str | None:
    """Why ``block`` is not a plain (non-reduction) statement, or None."""
    if is_reduction(block):
        return f"{role} {block.name} is a reduction"
    if any(ld.tensor == block.body.buffer for ld in E.loads(block.body.value)):
        return f"{role} {block.name} reads the buffer it writes"
    return None


def _map_stores(block: Block, fn) -> Block:
    """``block`` with ``fn`` applied to every expression of its stores (indices and values)."""

    def fix(st: Store) -> Store:
        return Store(st.buffer, tuple(fn(i) for i in st.indices), fn(st.value))

    return replace(block, body=fix(block.body),
                   init=None if block.init is None else fix(block.init))


# ---------------------------------------------------------------- compute_inline


def inline_error(program: Program, name: str) -> str | None:
    """Why block ``name`` cannot be inlined, or None when compute_inline would succeed."""
    path = tree.find_block(program, name)
    if path is None:
        return f"no block {name} in the program"
    block = tree.block_at(program, path)
    buf = program.buffer(block.body.buffer)
    if buf.scope == Scope.OUTPUT:
        return f"block {name} writes the output {buf.name}; only intermediates can be inlined"
    if buf.scope not in (Scope.GLOBAL, Scope.LOCAL):
        return f"block {name} writes {buf.scope.value} buffer {buf.name}"
    why = elementwise_error(block, "block")
    if why:
        return why + "; only non-reduction blocks can be inlined"
    if store_vars(block) is None:
        return (f"block {name} stores {buf.name} at indices that are not its iteration "
                "variables, each once")
    others = [b.name for b in writers(program, buf.name) if b.name != name]
    if others:
        return f"buffer {buf.name} is also written by block {', '.join(others)}"
    return None


def can_inline(program: Program, name: str) -> bool:
    """Whether :func:`compute_inline` would succeed on block ``name``."""
    return inline_error(program, name) is None


def compute_inline(program: Program, name: str) -> Program:
    """Replace every load of block ``name``'s buffer by the block's value expression, with its
    iteration variables replaced by the load's indices; the block, the loops holding only it
    and its buffer disappear.

    The block must be a non-reduction block that is the only writer of an intermediate
    (global or local) buffer, storing at its iteration variables, each once (in any order).
    """
    why = inline_error(program, name)
    if why:
        raise ValueError(why)
    path, block = find(program, name)
    buf, value = block.body.buffer, block.body.value
    names = store_vars(block)
    assert names is not None  # inline_error checked

    def expand(n: E.Expr) -> E.Expr | None:
        if isinstance(n, E.Load) and n.tensor == buf:
            return E.substitute(value, dict(zip(names, n.indices, strict=True)))
        return None

    def fix(b: Block) -> Block:
        return _map_stores(b, lambda e: E.transform(e, expand)) if b.name != name else b

    body = tuple(tree.map_blocks(n, fix) for n in program.body)
    program = remove_block(program.with_body(body), path)
    return drop_buffer(program, buf)


# ---------------------------------------------------------------- reverse_compute_inline


def reverse_compute_inline(program: Program, name: str) -> Program:
    """Fold elementwise consumer block ``name`` (C) into the block producing what it reads (P):
    P stores into C's buffer what C computes, with C's loads of P's buffer replaced by P's
    value. C, the loops holding only it and P's buffer disappear.

    Supported: C is a non-reduction block, the only writer of its buffer. P is the latest
    writer of what C reads: the only writer of an intermediate buffer, a non-reduction block
    storing at its iteration variables, each once (in any order). C loads P's buffer at its
    own iteration variables, each once (in any order, e.g. a transpose), always at the same
    indices; matching them with P's store indices maps C's variables to P's, whose extents
    must be equal (the two domains are the same). C's other loads are of inputs or of buffers
    complete before P's loop nest starts. Nothing but C reads P's buffer.
    """
    c_path, c = find(program, name)
    why = elementwise_error(c, "block")
    if why:
        raise ValueError(why + "; only an elementwise consumer can be folded into its producer")
    p, p_buf = _single_producer(program, c)
    _check_producer(program, p, c)
    rename = _iter_var_map(program, c, p, p_buf)
    p_value = p.body.value

    def fold(n: E.Expr) -> E.Expr | None:
        if isinstance(n, E.Load) and n.tensor == p_buf:
            return p_value
        if isinstance(n, E.Var):
            return rename.get(n.name)
        return None

    st = c.body
    # One pass: loads of P's buffer become P's value (already in P's variables; transform does
    # not revisit a replacement), every other variable is renamed from C's to P's.
    new_store = Store(st.buffer, tuple(E.transform(i, fold) for i in st.indices),
                      E.transform(st.value, fold))
    p_path = tree.block_path(program, p.name)
    program = tree.replace_at(program, p_path, (replace(p, body=new_store),))
    program = remove_block(program, c_path)
    return drop_buffer(program, p_buf)


def _single_producer(program: Program, c: Block) -> tuple[Block, str]:
    """The one block C reads from, and its buffer."""
    produced = []
    for buf in sorted(analysis.buffers_read(c)):
        ws = writers(program, buf)
        if ws:
            produced.append((buf, ws))
    if not produced:
        raise ValueError(f"block {c.name} reads no buffer written by another block")
    # The producer is the latest writer; the other buffers must be complete before its loop
    # nest starts (checked in _check_producer).
    produced.sort(key=lambda bw: max(_position(program, w.name) for w in bw[1]))
    buf, ws = produced[-1]
    reductions = [w for w in ws if is_reduction(w)]
    if reductions:  # also a decomposed reduction: an init block and an update block
        raise ValueError(f"producer {reductions[-1].name} is a reduction: cannot fold into a "
                         "reduction; use reverse_compute_at")
    if len(ws) > 1:
        raise ValueError(f"buffer {buf} is written by several blocks "
                         f"({', '.join(b.name for b in ws)})")
    return ws[0], buf


def _position(program: Program, block_name: str) -> tree.Path:
    return tree.block_path(program, block_name)


def _check_producer(program: Program, p: Block, c: Block) -> None:
    p_buf = p.body.buffer
    why = elementwise_error(p, "producer")
    if why:
        raise ValueError(why)
    scope = program.buffer(p_buf).scope
    if scope not in (Scope.GLOBAL, Scope.LOCAL):
        raise ValueError(f"producer {p.name} writes {scope.value} buffer {p_buf}, "
                         "which must stay")
    if store_vars(p) is None:
        raise ValueError(f"producer {p.name} stores {p_buf} at indices that are not its "
                         "iteration variables, each once")
    other_readers = [b.name for b in readers(program, p_buf) if b.name != c.name]
    if other_readers:
        raise ValueError(f"buffer {p_buf} is also read by block {', '.join(other_readers)}")
    c_writers = [b.name for b in writers(program, c.body.buffer) if b.name != c.name]
    if c_writers:
        raise ValueError(f"buffer {c.body.buffer} is also written by block "
                         f"{', '.join(c_writers)}")
    # C's other reads move to P's place: they must be complete before P's loop nest starts.
    p_root = _position(program, p.name)[0]
    for buf in analysis.buffers_read(c) - {p_buf}:
        late = [w.name for w in writers(program, buf) if _position(program, w.name)[0] >= p_root]
        if late:
            raise ValueError(f"block {c.name} also reads {buf}, written by block "
                             f"{', '.join(late)} not before producer {p.name}'s loop nest")


def _iter_var_map(program: Program, c: Block, p: Block, p_buf: str) -> dict[str, E.Expr]:
    """C's iteration variables -> P's, from C's loads of P's buffer."""
    c_ivs = {iv.name: iv for iv in c.iter_vars}
    idx = None
    for e in (*c.body.indices, c.body.value):
        for ld in E.loads(e):
            if ld.tensor != p_buf:
                continue
            if idx is not None and ld.indices != idx:
                raise ValueError(f"block {c.name} reads {p_buf} at different indices")
            idx = ld.indices
    assert idx is not None  # C reads P's buffer (P was found among the buffers C reads)
    names = [i.name for i in idx if isinstance(i, E.Var)]
    if len(names) != len(idx) or set(names) != set(c_ivs) or len(set(names)) != len(names):
        shown = ", ".join(str(i) for i in idx)
        raise ValueError(f"block {c.name} reads {p_buf}[{shown}]: the indices must be its "
                         "iteration variables, each once")
    p_ivs = {iv.name: iv for iv in p.iter_vars}
    p_vars = store_vars(p)
    assert p_vars is not None  # _check_producer checked
    rename: dict[str, E.Expr] = {}
    for v, pv in zip(names, p_vars, strict=True):
        if c_ivs[v].extent != p_ivs[pv].extent:
            raise ValueError(f"iteration variable {v} of {c.name} has extent "
                             f"{c_ivs[v].extent} but {pv} of {p.name} has {p_ivs[pv].extent}")
        rename[v] = E.Var(pv)
    return rename
