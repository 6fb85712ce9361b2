"""Reduction blocks, and moving a reduction's init into a block of its own.

A reduction block carries its init, which runs where every reduce iteration variable is 0.
:func:`decompose_init` moves the init into a block placed before one of the loops around the
reduction, so that loop nest runs without the per-iteration "first iteration?" test. The
schedule's ``decompose_reduction`` is this transformation at a loop the schedule names;
codegen's lowering applies it at :func:`init_hoist_loop`, the outermost loop where it needs
no loop copied, so that every reduction runs without the test.

>>> from probsched.ir.program import lower
>>> from probsched.workloads import gmm
>>> program = lower(gmm(b=1, n=2, m=3, k=4))
>>> init_hoist_loop(program, "C")
'k'
>>> program, init = decompose_init(program, "C", "k")
>>> print(program)
program gmm(A: float32[1, 2, 4], B: float32[1, 4, 3]) -> C: float32[1, 2, 3]
  for b in range(1):
    for i in range(2):
      for j in range(3):
        block C_init(b=b, i=i, j=j):
          C[b, i, j] = 0.0
        for k in range(4):
          block C(b=b, i=i, j=j; sum k=k):
            C[b, i, j] = C[b, i, j] + A[b, i, k] * B[b, k, j]
"""

from __future__ import annotations

from dataclasses import replace

from . import expr as E
from . import intervals, ops, tree
from .program import Block, Loop, Program, Store


def fed_loops(block: Block) -> tuple[set[str], set[str]]:
    """Loop variables used by the block's spatial bindings, and by its reduce bindings."""
    spatial: set[str] = set()
    reduce: set[str] = set()
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        (reduce if iv.reduce else spatial).update(E.free_vars(b))
    return spatial, reduce


def check_spatial_store(block: Block, st: Store, what: str) -> None:
    """A reduction's init and store address only the output element (spatial variables);
    raises ``ValueError`` naming the reduce variables used otherwise."""
    extra = _reduce_vars_used(block, st, what)
    if extra:
        raise ValueError(f"the {what} of block {block.name} uses reduce variable(s) "
                         f"{', '.join(sorted(extra))}")


def _reduce_vars_used(block: Block, st: Store, what: str) -> set[str]:
    used = set().union(*(E.free_vars(i) for i in st.indices)) if st.indices else set()
    if what == "init":
        used |= E.free_vars(st.value)
    return used - {iv.name for iv in block.iter_vars if not iv.reduce}


def always_true(cond: E.Expr, ranges: dict[str, tuple[int, int]]) -> bool:
    """Whether ``cond`` holds for all values of its variables in ``ranges`` (by interval
    bounds; False when that does not show it)."""
    if isinstance(cond, E.Const):
        return cond.value is True
    if isinstance(cond, E.Logical) and cond.op == "and":
        return (always_true(cond.a, ranges)
                and cond.b is not None and always_true(cond.b, ranges))
    if isinstance(cond, E.Compare) and cond.op in ("<", "<=", ">", ">="):
        a, b = intervals.bounds(cond.a, ranges), intervals.bounds(cond.b, ranges)
        if a is None or b is None:
            return False
        return {"<": a[1] < b[0], "<=": a[1] <= b[0], ">": a[0] > b[1], ">=": a[0] >= b[1]}[
            cond.op]
    return False


# ---------------------------------------------------------------- moving the init


def decompose_init(program: Program, name: str, loop_var: str) -> tuple[Program, str]:
    """Move block ``name``'s init into a new block ``<name>_init`` placed just before loop
    ``loop_var``; returns the program and the init block's name.

    ``loop_var`` must enclose the block, no loop outside it may feed a reduce binding (the
    init would then run again on every iteration of that loop), and every loop from it
    inwards must feed a binding (a loop that feeds none runs the whole reduction again on
    each iteration, e.g. a producer computed at a consumer's loop: the init must too). The
    init block's iteration variables are the spatial ones; the loops from ``loop_var``
    inwards that feed a spatial binding are copied (serial, named ``<var>_init``) around it,
    the loops outside are shared. The init block's guard is the block's guard where the init
    ran: with the loops that feed only reduce bindings at 0. Raises ``ValueError`` with the
    reason when the move is illegal.
    """
    path = tree.find_block(program, name)
    if path is None:
        raise ValueError(f"no block {name} in the program")
    block = tree.block_at(program, path)
    if block.init is None:
        raise ValueError(f"block {name} has no init (not a reduction, or already decomposed)")
    check_spatial_store(block, block.init, "init")
    loops = tree.ancestors(program, path)
    vars_ = [lp.var for lp in loops]
    if loop_var not in vars_:
        raise ValueError(f"loop {loop_var} does not enclose block {name}")
    k = vars_.index(loop_var)
    spatial, reduce = fed_loops(block)
    for lp in loops[:k]:
        if lp.var in reduce:
            raise ValueError(
                f"loop {loop_var} is inside loop {lp.var}, which feeds a reduce binding of "
                f"block {name}: the init would run again on every iteration of {lp.var}; "
                f"decompose at {lp.var} or a loop outside it")
    for lp in loops[k:]:
        if lp.extent > 1 and lp.var not in spatial | reduce:
            raise ValueError(
                f"loop {lp.var} feeds no binding of block {name}: the reduction runs again "
                f"on each of its iterations, and the init must too; decompose at a loop "
                f"inside {lp.var}")
    copied = [lp for lp in loops[k:] if lp.var in spatial]
    taken = tree.loop_vars(program)
    rename: dict[str, E.Var] = {}
    for lp in copied:
        new = tree.fresh_name(f"{lp.var}_init", taken)
        taken.add(new)
        rename[lp.var] = E.Var(new)
    init_block = Block(
        tree.fresh_name(f"{name}_init", {b.name for b in program.blocks()}),
        tuple(iv for iv in block.iter_vars if not iv.reduce),
        tuple(E.substitute(b, rename) for iv, b in zip(block.iter_vars, block.bindings,
                                                       strict=True) if not iv.reduce),
        block.init,
        predicate=_init_predicate(block, loops, k, rename),
    )
    node: Block | Loop = init_block
    for lp in reversed(copied):
        node = Loop(rename[lp.var].name, lp.extent, (node,))
    program = tree.replace_at(program, path, (replace(block, init=None),))
    program = tree.insert_at(program, path[: k + 1], (node,))
    return program, init_block.name


def _init_predicate(block: Block, loops: list[Loop], k: int, rename: dict[str, E.Var]
                    ) -> E.Expr | None:
    """The block's guard where its init ran, for the init block: the loops from ``loops[k]``
    inwards that are not copied (they feed only reduce bindings) are 0 there, the copied ones
    are renamed; conjuncts that then always hold are dropped."""
    at_init = {lp.var: E.Const(0) for lp in loops[k:] if lp.var not in rename} | rename
    ranges = {lp.var: (0, lp.extent - 1) for lp in loops[:k]}
    ranges |= {rename[lp.var].name: (0, lp.extent - 1) for lp in loops if lp.var in rename}
    kept = []
    for c in tree.conjuncts(block.predicate):
        c = E.substitute(c, at_init)
        if not always_true(c, ranges):
            kept.append(c)
    return ops.all_of(*kept) if kept else None


# ---------------------------------------------------------------- where no loop is copied


def init_hoist_loop(program: Program, name: str) -> str | None:
    """The outermost loop before which block ``name``'s init can move with no loop copied,
    or None (also when the block has no init).

    Those are the loops from which inwards each loop holds one node, ending in the block,
    and none feeds a spatial binding; the reduce bindings use only them and start at 0 (so
    the init ran once per output element, before its first update). A guard may use them:
    the init block keeps it at their first iteration.
    """
    path = tree.find_block(program, name)
    if path is None:
        return None
    block = tree.block_at(program, path)
    if block.init is None or _reduce_vars_used(block, block.init, "init"):
        return None
    loops = tree.ancestors(program, path)
    first = len(loops)  # the outermost loop of the perfect nest around the block
    while first > 0 and len(loops[first - 1].body) == 1:
        first -= 1
    for k in range(first, len(loops)):
        if _runs_init_once(block, loops[k:]):
            return loops[k].var
    return None


def _runs_init_once(block: Block, chain: list[Loop]) -> bool:
    """Whether every loop of ``chain`` (the loops around ``block``, from one inwards) feeds
    reduce bindings only, which start at 0 and use nothing else."""
    inner = {lp.var for lp in chain}
    ranges = {lp.var: (0, lp.extent - 1) for lp in chain}
    _, reduce = fed_loops(block)
    if any(lp.extent > 1 and lp.var not in reduce for lp in chain):
        return False  # a loop that reruns the whole reduction: the init runs in it
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        used = E.free_vars(b)
        if not iv.reduce and used & inner:
            return False
        if iv.reduce:
            span = intervals.bounds(b, ranges) if used <= inner else None
            at_zero = E.substitute(b, {v: E.Const(0) for v in inner})
            if span is None or span[0] != 0 or at_zero != E.Const(0):
                return False
    # A guard (a split that does not divide) may use the chain's loops: the init block keeps
    # it at their first iteration, where the init ran (decompose_init's predicate).
    return True
