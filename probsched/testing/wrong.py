"""Workloads that are subtly wrong versions of a workload, for testing that verdicts catch
real bugs: what a kernel computes when its schedule (or codegen) gets one thing wrong.

Each fault is planted in the workload's main reduction (its last sum, max or min stage):

- ``missing_term``: the last value of the longest reduce axis is left out (an off-by-one
  loop bound);
- ``missing_block``: the last quarter of that axis is left out (a partial tile dropped);
- ``shifted_index``: the first read in the reduction reads one further along its first
  axis longer than one (clamped at the end, so it stays in bounds);
- ``wrong_init``: the reduction starts from 1 instead of its identity (for max and min: from
  the largest or smallest term doubled);
- ``stale_partial``: each output element starts from its neighbour's result (an accumulator
  not reset between tiles), where the output has more than one element.

A fault that does not change the result beyond what float32 can resolve is not a bug a
verdict can see; :func:`resolvable` says whether it does, from the two references.

>>> from probsched.workloads import gmm
>>> sorted(wrong_versions(gmm(b=1, n=4, m=4, k=8)))
['missing_block', 'missing_term', 'shifted_index', 'stale_partial', 'wrong_init']
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import expr as E
from ..ir import ops
from ..ir.compute import Stage, Workload


def wrong_versions(workload: Workload) -> dict[str, Workload]:
    """The faulty versions of ``workload`` that apply to it, by fault name."""
    reductions = [k for k, s in enumerate(workload.stages) if s.reduction is not None]
    if not reductions:
        return {}
    k = reductions[-1]
    stage = workload.stages[k]
    out: dict[str, Workload] = {}
    longest = max(range(len(stage.reduce_axes)), key=lambda a: stage.reduce_axes[a][1])
    n = stage.reduce_axes[longest][1]
    if n > 1:
        out["missing_term"] = _with(workload, k, _shorter(stage, longest, n - 1))
    if n >= 4:
        out["missing_block"] = _with(workload, k, _shorter(stage, longest, n - n // 4))
    shifted = _shifted(workload, stage)
    if shifted is not None:
        out["shifted_index"] = _with(workload, k, shifted)
    out["wrong_init"] = _with(workload, k, _wrong_init(stage))
    if stage.shape and int(np.prod(stage.shape)) > 1:
        out["stale_partial"] = _stale(workload, k)
    return out


def resolvable(ref: np.ndarray, wrong: np.ndarray, tolerance: np.ndarray) -> bool:
    """Whether the fault moves some output element by more than twice its tolerance."""
    diff = np.abs(wrong.astype(np.float64) - ref.astype(np.float64))
    return bool(np.any(diff > 2 * tolerance))


def _with(workload: Workload, k: int, stage: Stage) -> Workload:
    stages = list(workload.stages)
    stages[k] = stage
    return replace(workload, stages=tuple(stages))


def _shorter(stage: Stage, which: int, n: int) -> Stage:
    axes = list(stage.reduce_axes)
    axes[which] = (axes[which][0], n)
    return replace(stage, reduce_axes=tuple(axes))


def _shifted(workload: Workload, stage: Stage) -> Stage | None:
    for target in E.loads(stage.body):
        shape = workload.tensor(target.tensor).shape
        dims = [d for d, n in enumerate(shape) if n > 1]
        if dims:
            break
    else:
        return None
    d = dims[0]
    index = list(target.indices)
    index[d] = ops.minimum(index[d] + 1, shape[d] - 1)
    moved = E.Load(target.tensor, tuple(index))
    done: list[bool] = []

    def swap(e: E.Expr) -> E.Expr | None:
        if e == target and not done:
            done.append(True)
            return moved
        return None

    body = E.transform(stage.body, swap)
    assert isinstance(stage.value, E.Reduce)
    return replace(stage, value=E.Reduce(stage.value.kind, body))


def _wrong_init(stage: Stage) -> Stage:
    """One more term, the wrong start: an extra iteration of the first reduce axis whose
    term is the start at the other reduce axes' first point (and changes nothing else)."""
    assert isinstance(stage.value, E.Reduce)
    axis, n = stage.reduce_axes[0]
    at_start = {a: E.Const(0) for a, _ in stage.reduce_axes}
    first = E.substitute(stage.body, at_start)
    if stage.reduction == "sum":
        start: E.Expr = E.Const(1.0)
        nothing: E.Expr = E.Const(0.0)
    else:  # max/min: a start beyond every term: the first term doubled, plus or minus one
        start = first * 2.0 + (1.0 if stage.reduction == "max" else -1.0)
        nothing = first  # a term already there
    others = [E.Var(a) for a, _ in stage.reduce_axes[1:]]
    extra = ops.select(ops.all_of(*(ops.eq(v, 0) for v in others)), start, nothing)
    body = ops.select(E.Var(axis) >= n, extra, stage.body)
    axes = ((axis, n + 1), *stage.reduce_axes[1:])
    return replace(stage, value=E.Reduce(stage.value.kind, body), reduce_axes=axes)


def _stale(workload: Workload, k: int) -> Workload:
    """The reduction's result plus its neighbour's along its last axis, feeding the rest."""
    stage = workload.stages[k]
    name = f"{stage.name}_partial"
    first = replace(stage, name=name)
    ix = [E.Var(a) for a in stage.axes]
    last = ix[-1]
    prev = (*ix[:-1], ops.maximum(last - 1, 0))
    value = ops.select(last > 0, E.Load(name, tuple(ix)) + E.Load(name, prev),
                       E.Load(name, tuple(ix)))
    rest = replace(stage, value=value, reduce_axes=())
    stages = (*workload.stages[:k], first, rest, *workload.stages[k + 1:])
    return replace(workload, stages=stages)
