"""Finding and replacing nodes of a program's loop tree by path (a tuple of child indices).

Programs are immutable; a rewrite copies the path from the root to the changed node.
Loops are named by their (program-unique) variable, blocks by their (unique) name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from . import expr as E
from .program import Block, Loop, Node, Program, walk

Path = tuple[int, ...]


def iter_paths(body: tuple[Node, ...], prefix: Path = ()) -> Iterator[tuple[Path, Node]]:
    for k, node in enumerate(body):
        path = (*prefix, k)
        yield path, node
        if isinstance(node, Loop):
            yield from iter_paths(node.body, path)


def find_loop(program: Program, var: str) -> Path | None:
    return program.paths()[0].get(var)


def find_block(program: Program, name: str) -> Path | None:
    return program.paths()[1].get(name)


def loop_path(program: Program, var: str) -> Path:
    """The path of loop ``var``, which the caller knows exists (a ``KeyError`` otherwise)."""
    return program.paths()[0][var]


def block_path(program: Program, name: str) -> Path:
    """The path of block ``name``, which the caller knows exists (a ``KeyError`` otherwise)."""
    return program.paths()[1][name]


def node_at(program: Program, path: Path) -> Node:
    nodes = program.body
    node: Node | None = None
    for k in path:
        node = nodes[k]
        nodes = node.body if isinstance(node, Loop) else ()
    assert node is not None
    return node


def loop_at(program: Program, path: Path) -> Loop:
    """The node at ``path``, which the caller knows is a loop."""
    node = node_at(program, path)
    assert isinstance(node, Loop), f"not a loop at {path}"
    return node


def block_at(program: Program, path: Path) -> Block:
    """The node at ``path``, which the caller knows is a block."""
    node = node_at(program, path)
    assert isinstance(node, Block), f"not a block at {path}"
    return node


def ancestors(program: Program, path: Path) -> list[Loop]:
    """The loops enclosing the node at ``path``, outermost first."""
    out: list[Loop] = []
    nodes = program.body
    for k in path[:-1]:
        node = nodes[k]
        assert isinstance(node, Loop)  # every node above another is a loop
        out.append(node)
        nodes = node.body
    return out


def replace_at(program: Program, path: Path, new: tuple[Node, ...]) -> Program:
    """The program with the node at ``path`` replaced by the nodes ``new`` (possibly none)."""

    def rebuild(body: tuple[Node, ...], rest: Path) -> tuple[Node, ...]:
        k = rest[0]
        if len(rest) == 1:
            return body[:k] + new + body[k + 1 :]
        node = body[k]
        assert isinstance(node, Loop)  # every node above another is a loop
        return body[:k] + (with_body(node, rebuild(node.body, rest[1:])),) + body[k + 1 :]

    return program.with_body(rebuild(program.body, path))


def insert_at(program: Program, path: Path, new: tuple[Node, ...]) -> Program:
    """Insert ``new`` before the position ``path`` (which may be one past the end)."""
    parent, k = path[:-1], path[-1]
    if not parent:
        body = program.body
        return program.with_body(body[:k] + new + body[k:])
    loop = loop_at(program, parent)
    body = loop.body[:k] + new + loop.body[k:]
    return replace_at(program, parent, (with_body(loop, body),))


def blocks_under(node: Node) -> list[Block]:
    if isinstance(node, Block):
        return [node]
    return [n for n, _ in walk(node.body) if isinstance(n, Block)]


def with_body(loop: Loop, body: tuple[Node, ...]) -> Loop:
    """``loop`` with another body (faster than ``dataclasses.replace`` on a hot path)."""
    return Loop(loop.var, loop.extent, body, loop.kind, loop.annotations)


def map_blocks(node: Node, fn: Callable[[Block], Block]) -> Node:
    """``node`` with every block below it rewritten by ``fn``."""
    if isinstance(node, Block):
        return fn(node)
    return with_body(node, tuple(map_blocks(n, fn) for n in node.body))


def substitute_loops(node: Node, mapping: dict[str, E.Expr]) -> Node:
    """Replace loop variables in the bindings and predicates of every block below."""
    names = mapping.keys()

    def fix(b: Block) -> Block:
        if not any(E.free_vars(x) & names for x in b.bindings) and (
            b.predicate is None or not E.free_vars(b.predicate) & names
        ):
            return b
        pred = None if b.predicate is None else E.substitute(b.predicate, mapping)
        bindings = tuple(E.substitute(x, mapping) for x in b.bindings)
        return Block(b.name, b.iter_vars, bindings, b.body, b.init, pred, b.reduction)

    return map_blocks(node, fix)


def add_predicate(block: Block, cond: E.Expr) -> Block:
    pred = cond if block.predicate is None else E.Logical("and", block.predicate, cond)
    return replace(block, predicate=pred)


def conjuncts(cond: E.Expr | None) -> list[E.Expr]:
    if cond is None:
        return []
    if isinstance(cond, E.Logical) and cond.op == "and":
        return conjuncts(cond.a) + conjuncts(cond.b)
    return [cond]


def loop_vars(program: Program) -> set[str]:
    return set(program.paths()[0])


def fresh_name(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``base_1``, ``base_2``, ..."""
    if base not in taken:
        return base
    k = 1
    while f"{base}_{k}" in taken:
        k += 1
    return f"{base}_{k}"
