"""Reduction primitives: decompose_reduction and rfactor.

A reduction block carries its init (run when every reduce iteration variable is 0).
decompose_reduction moves that init into a block of its own before a chosen loop, so the
update nest can be tiled, vectorized and unrolled without the per-iteration init test (the
move is :mod:`probsched.ir.reduction`'s, which codegen's lowering shares).
rfactor reduces in two steps, partial results per iteration of one reduce loop and then a
reduction of those, so that loop becomes spatial: parallel or vectorized. Semantics follow
TVM TensorIR; each function raises ``ValueError`` with the reason when the step is illegal.
"""

from __future__ import annotations

from dataclasses import replace

from ...ir import analysis, tree
from ...ir import expr as E
from ...ir.program import Block, Buffer, IterVar, Loop, Program, Scope, Store
from ...ir.reduction import always_true, check_spatial_store, decompose_init, fed_loops

_COMBINE = {"sum": "+", "max": "max", "min": "min"}


# ---------------------------------------------------------------- decompose_reduction


def decompose_reduction(program: Program, name: str, loop_var: str) -> tuple[Program, str]:
    """Move block ``name``'s init into a new block ``<name>_init`` placed just before loop
    ``loop_var``; returns the program and the init block's name. The transformation is
    :func:`probsched.ir.reduction.decompose_init` (codegen's lowering uses it too), which
    says what is legal and where the init block goes."""
    return decompose_init(program, name, loop_var)


# ---------------------------------------------------------------- rfactor


def rfactor(program: Program, loop_var: str, factor_axis: int) -> tuple[Program, str]:
    """Split the reduction under reduce loop ``loop_var`` in two; returns the program and the
    name of the partial-results block.

    Supported form: exactly one block under the loop, a sum/max/min reduction with its init
    (``buf[idx] = buf[idx] op expr``); the loop feeds reduce bindings only, and no loop around
    the block feeds both spatial and reduce bindings. As in TVM, the partial-results block
    ``<name>_rf`` takes the block's place and has one iteration variable per loop feeding a
    reduce binding, bound to that loop: ``loop_var``'s is spatial (same name as the loop), the
    others are reduce; the old reduce variables become their bindings in the new ones. It
    accumulates, with the same init, into the new global buffer ``<buf>_rf``: ``buf``'s
    shape with the loop's extent inserted at ``factor_axis`` (``0..ndim``, or negative
    counting from the end as in TVM). The block ``name`` then reduces ``<buf>_rf`` over that
    dimension into ``buf``, in a new loop nest right after the root-level nest of the
    partial-results block.

    Guards (partial tiles of a non-dividing split) must leave every partial-result slot
    initialised: at reduce index 0 of the other reduce loops they must hold for every value
    of ``loop_var``; otherwise the step is refused.
    """
    lpath = tree.find_loop(program, loop_var)
    if lpath is None:
        raise ValueError(f"no loop {loop_var} in the program")
    loop = tree.loop_at(program, lpath)
    under = tree.blocks_under(loop)
    if len(under) != 1:
        names = ", ".join(b.name for b in under) or "none"
        raise ValueError(f"loop {loop_var} holds {len(under)} blocks ({names}); rfactor needs "
                         "exactly one")
    block = under[0]
    rhs = _reduction_rhs(block)
    path = tree.block_path(program, block.name)
    loops = tree.ancestors(program, path)
    spatial, reduce = fed_loops(block)
    if loop_var in spatial:
        raise ValueError(f"loop {loop_var} feeds a spatial binding of block {block.name}; "
                         "rfactor needs a loop feeding reduce bindings only")
    if loop_var not in reduce:
        raise ValueError(f"loop {loop_var} feeds no reduce binding of block {block.name}")
    both = [lp.var for lp in loops if lp.var in spatial and lp.var in reduce]
    if both:
        raise ValueError(f"loop {', '.join(both)} feeds both spatial and reduce bindings of "
                         f"block {block.name}")
    buf = program.buffer(block.body.buffer)
    axis = _factor_axis(factor_axis, len(buf.shape))
    _check_nest_alone(program, path[0], block)
    red_loops = [lp for lp in loops if lp.var in reduce]
    _check_guards(block, loops, reduce, loop_var)

    rf_buf = tree.fresh_name(f"{buf.name}_rf", {b.name for b in program.buffers})
    rf_name = tree.fresh_name(f"{block.name}_rf", {b.name for b in program.blocks()})
    rf_block, rf_var = _rf_block(block, rhs, red_loops, loop, rf_name, rf_buf, axis)
    final = _final_nest(program, block, loop, rf_buf, rf_var, axis)

    program = tree.replace_at(program, path, (rf_block,))
    program = tree.insert_at(program, (path[0] + 1,), (final,))
    shape = buf.shape[:axis] + (loop.extent,) + buf.shape[axis:]
    at = program.buffers.index(buf) + 1
    buffers = (*program.buffers[:at], Buffer(rf_buf, shape, buf.dtype, Scope.GLOBAL),
               *program.buffers[at:])
    return replace(program, buffers=buffers), rf_name


def _reduction_rhs(block: Block) -> E.Expr:
    """``expr`` of a reduction body ``buf[idx] = buf[idx] op expr``."""
    if block.reduction not in _COMBINE:
        raise ValueError(f"block {block.name} is not a sum, max or min reduction")
    if block.init is None:
        raise ValueError(f"block {block.name} has no init (decomposed?); rfactor before "
                         "decompose_reduction")
    st = block.body
    check_spatial_store(block, st, "store")
    check_spatial_store(block, block.init, "init")
    own = E.Load(st.buffer, st.indices)
    v = st.value
    if isinstance(v, E.Binary) and v.op == _COMBINE[block.reduction]:
        if v.a == own and not _reads(v.b, st.buffer):
            return v.b
        if v.b == own and not _reads(v.a, st.buffer):
            return v.a
    raise ValueError(f"block {block.name}'s body is not of the form "
                     f"{st.buffer}[...] = {block.reduction} of {st.buffer}[...] and a value")


def _reads(e: E.Expr, buffer: str) -> bool:
    return any(ld.tensor == buffer for ld in E.loads(e))


def _factor_axis(factor_axis: int, ndim: int) -> int:
    if not isinstance(factor_axis, int) or isinstance(factor_axis, bool):
        raise ValueError(f"factor_axis must be an integer, got {factor_axis!r}")
    if not -ndim - 1 <= factor_axis <= ndim:
        raise ValueError(f"factor_axis {factor_axis} is out of range for a buffer of {ndim} "
                         f"dimension(s): expected {-ndim - 1}..{ndim}")
    return factor_axis if factor_axis >= 0 else factor_axis + ndim + 1


def _check_nest_alone(program: Program, root: int, block: Block) -> None:
    """No other block of the nest touches the buffer: the result is complete only after the
    new final nest, which runs after this one."""
    buf = block.body.buffer
    for b in tree.blocks_under(program.body[root]):
        if b.name != block.name and (b.body.buffer == buf or buf in analysis.buffers_read(b)):
            raise ValueError(f"block {b.name} in the same loop nest uses {buf}, which will be "
                             "complete only after that nest")


def _check_guards(block: Block, loops: list[Loop], reduce: set[str], loop_var: str) -> None:
    """Every partial-result slot gets its init: with the other reduce loops at 0 (where the
    init runs), each guard over reduce loops holds for every value of ``loop_var``."""
    ranges = {lp.var: (0, lp.extent - 1) for lp in loops}
    zero = {v: E.Const(0) for v in reduce - {loop_var}}
    for c in tree.conjuncts(block.predicate):
        if not E.free_vars(c) & reduce:
            continue
        at_zero = E.substitute(c, zero)
        if not always_true(at_zero, ranges):
            raise ValueError(f"guard {c} of block {block.name} (a partial tile) would leave "
                             "some partial results uninitialised; use split factors that "
                             "cover the extent more tightly")


def _rf_block(block: Block, rhs: E.Expr, red_loops: list[Loop], loop: Loop, name: str,
              rf_buf: str, axis: int) -> tuple[Block, str]:
    """The partial-results block, and the name of its iteration variable for ``loop``."""
    assert block.reduction is not None and block.init is not None  # _reduction_rhs checked
    spatial = [(iv, b) for iv, b in zip(block.iter_vars, block.bindings, strict=True)
               if not iv.reduce]
    taken = {iv.name for iv, _ in spatial}
    new: dict[str, str] = {}
    for lp in red_loops:
        new[lp.var] = tree.fresh_name(lp.var, taken)
        taken.add(new[lp.var])
    as_iv = {v: E.Var(n) for v, n in new.items()}
    # Each old reduce variable is its binding, written in the new iteration variables.
    old = {iv.name: E.substitute(b, as_iv)
           for iv, b in zip(block.iter_vars, block.bindings, strict=True) if iv.reduce}
    rf_var = new[loop.var]
    ivs = [iv for iv, _ in spatial] + [IterVar(rf_var, loop.extent)]
    ivs += [IterVar(new[lp.var], lp.extent, True) for lp in red_loops if lp is not loop]
    bindings = [b for _, b in spatial] + [E.Var(loop.var)]
    bindings += [E.Var(lp.var) for lp in red_loops if lp is not loop]
    idx = block.body.indices
    rf_idx = (*idx[:axis], E.Var(rf_var), *idx[axis:])
    update = E.binary(_COMBINE[block.reduction], E.Load(rf_buf, rf_idx), E.substitute(rhs, old))
    rf = Block(name, tuple(ivs), tuple(bindings), Store(rf_buf, rf_idx, update),
               init=Store(rf_buf, rf_idx, block.init.value), predicate=block.predicate,
               reduction=block.reduction)
    return rf, rf_var


def _final_nest(program: Program, block: Block, loop: Loop, rf_buf: str, rf_var: str,
                axis: int) -> Loop | Block:
    """Block ``block.name`` reducing ``rf_buf`` over its factor dimension, in its own nest."""
    assert block.reduction is not None  # _reduction_rhs checked
    spatial = [iv for iv in block.iter_vars if not iv.reduce]
    taken = tree.loop_vars(program)
    loop_names = []
    for d in range(len(spatial) + 1):  # named like the nests other primitives create
        loop_names.append(tree.fresh_name(f"ax{d}", taken))
        taken.add(loop_names[-1])
    idx = block.body.indices
    rf_idx = (*idx[:axis], E.Var(rf_var), *idx[axis:])
    update = E.binary(_COMBINE[block.reduction], E.Load(block.body.buffer, idx),
                      E.Load(rf_buf, rf_idx))
    node: Loop | Block = Block(
        block.name,
        (*spatial, IterVar(rf_var, loop.extent, True)),
        tuple(E.Var(n) for n in loop_names),
        Store(block.body.buffer, idx, update),
        init=block.init,
        reduction=block.reduction,
    )
    extents = [iv.extent for iv in spatial] + [loop.extent]
    for n, extent in reversed(list(zip(loop_names, extents, strict=True))):
        node = Loop(n, extent, (node,))
    return node
