"""Loop primitives: split, fuse, reorder, and setting a loop's kind or annotations.

Each is a function from a program to a new program; it raises ``ValueError`` with the reason
when the step is illegal (the Schedule method turns that into a ScheduleError naming the
primitive and its arguments).
"""

from __future__ import annotations

import math
from dataclasses import replace

from ...ir import expr as E
from ...ir import tree
from ...ir.program import Block, Loop, LoopKind, Program

MAX_EXTENT = 2**62  # of any loop: loop counters and index arithmetic are 64-bit


def _loop(program: Program, var: str) -> tuple[tree.Path, Loop]:
    path = tree.find_loop(program, var)
    if path is None:
        raise ValueError(f"no loop {var} in the program")
    return path, tree.loop_at(program, path)


def infer_factors(extent: int, factors: list[int | None]) -> list[int]:
    """Fill in the one None factor as ceil(extent / product of the others)."""
    if sum(f is None for f in factors) > 1:
        raise ValueError("at most one factor may be None")
    for f in factors:
        if f is not None and (not isinstance(f, int) or isinstance(f, bool) or f < 1):
            raise ValueError(f"factor {f!r} is not a positive integer")
    known = math.prod(f for f in factors if f is not None)
    out = [(-(-extent // known)) if f is None else f for f in factors]
    if math.prod(out) >= MAX_EXTENT:
        raise ValueError(f"factors {out} multiply to 2**{math.prod(out).bit_length() - 1} or "
                         f"more; loops run fewer than 2**62 iterations (the limit)")
    if math.prod(out) < extent:
        raise ValueError(f"factors {out} multiply to {math.prod(out)} < extent {extent}")
    return out


def split(program: Program, var: str, factors: list[int | None]) -> tuple[Program, list[str]]:
    """Split loop ``var`` into nested loops of the given extents (outermost first). When the
    factors multiply to more than the extent, blocks get a guard (a partial last tile)."""
    path, loop = _loop(program, var)
    if len(factors) < 2:
        raise ValueError("split needs at least two factors")
    fs = infer_factors(loop.extent, list(factors))
    taken = tree.loop_vars(program)
    names = []
    for k in range(len(fs)):
        name = tree.fresh_name(f"{var}_{k}", taken)
        taken.add(name)
        names.append(name)
    fused: E.Expr = E.Const(0)
    for name, f in zip(names, fs, strict=True):
        fused = E.binary("+", E.binary("*", fused, f), E.Var(name))
    body = tuple(tree.substitute_loops(n, {var: fused}) for n in loop.body)
    if math.prod(fs) > loop.extent:
        guard = E.Compare("<", fused, E.Const(loop.extent))
        body = tuple(tree.map_blocks(n, lambda b: tree.add_predicate(b, guard)) for n in body)
    node = Loop(names[-1], fs[-1], body)
    for name, f in reversed(list(zip(names[:-1], fs[:-1], strict=True))):
        node = Loop(name, f, (node,))
    return tree.replace_at(program, path, (node,)), names


def _chain(program: Program, vars_: list[str]) -> tuple[tree.Path, list[Loop]]:
    """The perfectly nested chain of loops from the outermost to the innermost of ``vars_``."""
    paths = []
    for v in vars_:
        path = tree.find_loop(program, v)
        if path is None:
            raise ValueError(f"no loop {v} in the program")
        paths.append(path)
    top = min(paths, key=len)
    bottom = max(paths, key=len)
    if bottom[: len(top)] != top:
        raise ValueError("the loops are not nested in one another")
    depth = len(bottom) - len(top) + 1
    chain = [tree.loop_at(program, top)]
    while len(chain) < depth:
        node = chain[-1]
        inner = node.body[0] if len(node.body) == 1 else None
        if not isinstance(inner, Loop):
            raise ValueError(f"loop {node.var} holds more than one statement between them")
        chain.append(inner)
    for p in paths:
        # Inside a chain of single children every index below ``top`` is 0.
        if p[: len(top)] != top or any(p[len(top):]):
            raise ValueError("the loops are not nested in one another")
    return top, chain


def fuse(program: Program, vars_: list[str]) -> tuple[Program, str]:
    """Fuse directly nested loops (outermost first) into one."""
    if len(vars_) < 2:
        raise ValueError("fuse needs at least two loops")
    if len(set(vars_)) != len(vars_):
        raise ValueError("a loop is given twice")
    top, chain = _chain(program, vars_)
    if [lp.var for lp in chain] != list(vars_):
        raise ValueError("fused loops must be given outermost first, each directly inside the "
                         "previous one")
    extent = math.prod(lp.extent for lp in chain)
    if extent >= MAX_EXTENT:
        raise ValueError(f"the fused loop would run {extent} iterations; loops run fewer than "
                         "2**62 (the limit)")
    name = tree.fresh_name("_".join(vars_) + "_fused", tree.loop_vars(program))
    mapping, inner = {}, 1
    for lp in reversed(chain):
        q = E.binary("//", E.Var(name), inner)
        mapping[lp.var] = q if lp is chain[0] else E.binary("%", q, lp.extent)
        inner *= lp.extent
    body = tuple(tree.substitute_loops(n, mapping) for n in chain[-1].body)
    return tree.replace_at(program, top, (Loop(name, extent, body),)), name


def reorder(program: Program, vars_: list[str]) -> Program:
    """Put the given loops in the given order, in the positions they occupy together."""
    if not vars_:
        raise ValueError("reorder needs at least one loop")
    if len(set(vars_)) != len(vars_):
        raise ValueError("a loop is given twice")
    top, chain = _chain(program, vars_)
    chosen = set(vars_)
    order = iter(vars_)
    by_var = {lp.var: lp for lp in chain}
    new_chain = [by_var[next(order)] if lp.var in chosen else lp for lp in chain]
    if all(a is b for a, b in zip(new_chain, chain, strict=True)):
        return program
    node = tree.with_body(new_chain[-1], chain[-1].body)
    for lp in reversed(new_chain[:-1]):
        node = tree.with_body(lp, (node,))
    return tree.replace_at(program, top, (node,))


def _reduce_loop_vars(block: Block) -> set[str]:
    out = set()
    for iv, b in zip(block.iter_vars, block.bindings, strict=True):
        if iv.reduce:
            out |= E.free_vars(b)
    return out


def set_kind(program: Program, var: str, kind: LoopKind) -> Program:
    """Make loop ``var`` parallel, vectorized, unrolled or serial. Parallel and vectorized
    loops must not carry a reduction (their variable may not feed a reduce binding)."""
    path, loop = _loop(program, var)
    if kind in (LoopKind.PARALLEL, LoopKind.VECTORIZED):
        for b in tree.blocks_under(loop):
            if var in _reduce_loop_vars(b):
                raise ValueError(
                    f"loop {var} carries the reduction of block {b.name}; it cannot be "
                    f"{kind.value} (rfactor the reduction first)")
    if kind == LoopKind.PARALLEL:
        for anc in tree.ancestors(program, path):
            if anc.kind == LoopKind.VECTORIZED:
                raise ValueError(f"loop {var} is inside vectorized loop {anc.var}")
    return tree.replace_at(program, path, (replace(loop, kind=kind),))


def annotate(program: Program, var: str, key: str, value) -> Program:
    path, loop = _loop(program, var)
    ann = tuple((k, v) for k, v in loop.annotations if k != key) + ((key, value),)
    return tree.replace_at(program, path, (replace(loop, annotations=ann),))
