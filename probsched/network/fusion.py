"""Fusion of a graph's ops into tasks, as Relay fuses: each anchor (a convolution or matmul,
or a reduction) takes the injective ops after it, then the injective ops before it that
only it reads; injective ops left over make tasks of their own the same way.

A group grows in topological order: an injective op joins when it reads the group and
nothing that depends on the group from outside it (which would make a cycle); the group
kept is the longest such run that has exactly one value leaving it (its task's output).
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph import ANCHOR, INJECTIVE, REDUCE, Graph

MAX_OPS = 16
"""The most ops one task holds."""


@dataclass(frozen=True)
class Group:
    """Ops (indices into the graph's ops, in order) computing one value, ``output``."""

    ops: tuple[int, ...]
    output: str


def fuse(graph: Graph) -> list[Group]:
    """The graph's ops as groups, in an order that runs them correctly."""
    owner: dict[int, int] = {}  # op index -> group id
    members: dict[int, list[int]] = {}
    ops = graph.ops
    consumers = graph.consumers()
    made_by = {op.output: i for i, op in enumerate(ops)}
    for k, op in enumerate(ops):
        if op.family in (ANCHOR, REDUCE) and k not in owner:
            _grow(graph, k, owner, members, consumers)
    # injective producers that only one group reads, latest first so chains join
    for k in reversed(range(len(ops))):
        if k in owner or ops[k].family != INJECTIVE or ops[k].output in graph.outputs:
            continue
        readers = {owner.get(c) for c in consumers.get(ops[k].output, [])}
        if len(readers) == 1 and None not in readers:
            g = readers.pop()
            assert g is not None
            if len(members[g]) < MAX_OPS and not _depends_on(graph, k, set(members[g]), made_by):
                owner[k] = g
                members[g].append(k)
    for k in range(len(ops)):
        if k not in owner:
            _grow(graph, k, owner, members, consumers)
    groups = [Group(tuple(sorted(m)), ops[max(m)].output) for m in members.values()]
    return _ordered(graph, groups)


def _grow(graph: Graph, start: int, owner: dict[int, int], members: dict[int, list[int]],
          consumers: dict[str, list[int]]):
    ops = graph.ops
    inside = {ops[start].output}
    tainted: set[str] = set()  # values outside the group that depend on it
    taken, best = [start], [start]
    for k in range(start + 1, len(ops)):
        op = ops[k]
        reads_group = any(v in inside for v in op.inputs)
        if not reads_group and not any(v in tainted for v in op.inputs):
            continue
        if (reads_group and op.family == INJECTIVE and k not in owner and len(taken) < MAX_OPS
                and not any(v in tainted for v in op.inputs)):
            taken.append(k)
            inside.add(op.output)
            if _escaping(graph, taken, consumers) == 1:
                best = list(taken)
        else:
            tainted.add(op.output)
    gid = len(members)
    members[gid] = best
    for k in best:
        owner[k] = gid


def _depends_on(graph: Graph, k: int, group: set[int], made_by: dict[str, int]) -> bool:
    """Whether op ``k`` reads, directly or through other ops, a value ``group`` computes
    (``made_by``: value name -> index of the op writing it)."""
    stack, seen = [k], {k}
    while stack:
        for v in graph.ops[stack.pop()].inputs:
            j = made_by.get(v)
            if j is None or j in seen:
                continue
            if j in group:
                return True
            seen.add(j)
            stack.append(j)
    return False


def _escaping(graph: Graph, taken: list[int], consumers: dict[str, list[int]]) -> int:
    """How many values of the ops ``taken`` are read outside them (or are graph outputs)."""
    inside = set(taken)
    n = 0
    for k in taken:
        v = graph.ops[k].output
        if v in graph.outputs or any(c not in inside for c in consumers.get(v, [])):
            n += 1
    return n


def _ordered(graph: Graph, groups: list[Group]) -> list[Group]:
    """Groups in an order where each runs after the groups whose outputs it reads."""
    made_by = {g.output: i for i, g in enumerate(groups)}
    done: set[int] = set()
    out: list[Group] = []

    def visit(i: int, path: frozenset[int]) -> None:
        if i in done:
            return
        assert i not in path, "fusion made a cycle"
        for k in groups[i].ops:
            for v in graph.ops[k].inputs:
                j = made_by.get(v)
                if j is not None and j != i:
                    visit(j, path | {i})
        done.add(i)
        out.append(groups[i])

    for i in sorted(range(len(groups)), key=lambda i: groups[i].ops[0]):
        visit(i, frozenset())
    return out
