"""Tasks: each fused group made one :class:`~probsched.ir.compute.Workload`, and identical
ones (the same structural hash: stages and inputs are named by position, so two identical
blocks of a model print alike) deduplicated and weighted by how often the model runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.compute import Workload
from .fusion import Group
from .graph import ANCHOR, REDUCE, Emitter, Graph, Readable

MAX_NAME_KINDS = 6


@dataclass(frozen=True)
class Step:
    """One kernel call of the network: the task's hash, the values it reads (in its
    workload's input order) and the value it writes."""

    task: str
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Task:
    """A workload the model runs ``weight`` times; ``hash`` is its structural hash;
    ``anchor`` the kind of its anchor or reduction op ("conv", "matmul", "softmax", ...; its
    first op's kind where it has neither): tasks of one anchor share a cost model."""

    name: str
    workload: Workload
    weight: int
    hash: str
    anchor: str

    @property
    def flops(self) -> int:
        return self.workload.flops


def group_workload(graph: Graph, group: Group) -> tuple[Workload, tuple[str, ...]]:
    """The workload of ``group`` and the values its inputs are, in order."""
    kinds = list(dict.fromkeys(graph.ops[k].kind for k in group.ops))
    name = "_".join(kinds[:MAX_NAME_KINDS]) + ("_etc" if len(kinds) > MAX_NAME_KINDS else "")
    em = Emitter(name)
    values: dict[str, Readable] = {}
    inputs: list[str] = []
    for k in group.ops:
        op = graph.ops[k]
        args = []
        for v in op.inputs:
            if v not in values:
                values[v] = em.input(graph.shape(v))
                inputs.append(v)
            args.append(values[v])
        values[op.output] = op.emit(em, args)
    return em.wb.build(), tuple(inputs)


def group_anchor(graph: Graph, group: Group) -> str:
    """The kind of ``group``'s anchor or reduction op (its first op's where it has none)."""
    ops = [graph.ops[k] for k in group.ops]
    return next((op.kind for op in ops if op.family in (ANCHOR, REDUCE)), ops[0].kind)


def make_tasks(graph: Graph, groups: list[Group]) -> tuple[tuple[Task, ...], tuple[Step, ...]]:
    """The distinct tasks (in order of first use, weighted by count) and the steps."""
    tasks: dict[str, Task] = {}
    steps = []
    for g in groups:
        wl, inputs = group_workload(graph, g)
        h = wl.structural_hash
        old = tasks.get(h)
        tasks[h] = Task(wl.name, wl, 1 if old is None else old.weight + 1, h,
                        group_anchor(graph, g))
        steps.append(Step(h, inputs, g.output))
    return tuple(tasks.values()), tuple(steps)
