"""Where a compiled network's time goes: each kernel call timed in graph order, the same
call repeated alone, and the task's best in the tuning database, summed per task.

In graph order a call finds its inputs where its producer left them and its weights wherever
the rest of the network pushed them; repeated alone it finds both in cache, as the tuner's
runner does. The three columns split the gap between the network and the sum of its tasks'
bests into what the graph costs (``in_graph / alone``) and what the kernel costs once
rebuilt from the database (``alone / best``).

>>> rows = profile_network(compiled, inputs, db=db)     # doctest: +SKIP
>>> print(describe_profile(rows))                       # doctest: +SKIP
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..target import host

if TYPE_CHECKING:
    from ..search.database import TuningDatabase
    from .compiled import CompiledNetwork

PASSES = 20
ALONE_REPEATS = 10


@dataclass(frozen=True)
class TaskProfile:
    """One task's calls summed: ``calls`` of them per network pass; ``in_graph_ms`` their
    median times in graph order, ``alone_ms`` each call's median repeated alone, and
    ``best_ms`` the database's best times ``calls`` (None: no record for this host)."""

    task: str
    name: str
    calls: int
    in_graph_ms: float
    alone_ms: float
    best_ms: float | None

    def as_json(self) -> dict:
        return asdict(self)


def _seconds(call) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def profile_network(compiled: CompiledNetwork, inputs: Sequence[np.ndarray], *,
                    db: TuningDatabase | None = None, passes: int = PASSES,
                    alone_repeats: int = ALONE_REPEATS) -> list[TaskProfile]:
    """Time every step of ``compiled`` (on ``inputs``) ``passes`` times in graph order and
    ``alone_repeats`` times alone; one row per task, in order of first use."""
    compiled(*inputs)  # binds the inputs, warms every kernel
    steps = compiled.network.steps
    calls = compiled.calls
    in_graph: list[list[float]] = [[] for _ in steps]
    for _ in range(passes):
        for k, call in enumerate(calls):
            in_graph[k].append(_seconds(call))
    alone = []
    for call in calls:
        call()
        alone.append(statistics.median(_seconds(call) for _ in range(alone_repeats)))
    by_task: dict[str, list[int]] = {}  # task -> its steps, tasks in order of first use
    for k, st in enumerate(steps):
        by_task.setdefault(st.task, []).append(k)
    tasks = {t.hash: t for t in compiled.network.tasks}
    rows = []
    for h, ks in by_task.items():
        best = db.best(tasks[h].workload, 1, target=host().key) if db is not None else []
        rows.append(TaskProfile(
            h, tasks[h].name, len(ks),
            1e3 * sum(statistics.median(in_graph[k]) for k in ks),
            1e3 * sum(alone[k] for k in ks),
            1e3 * len(ks) * best[0].latency_s if best else None))
    return rows


def describe_profile(rows: Sequence[TaskProfile], top: int | None = None) -> str:
    """The profile as a table, the tasks costliest in graph order first (``top`` of them:
    None, all), and the totals."""
    order = sorted(rows, key=lambda r: -r.in_graph_ms)
    shown = order if top is None else order[:top]
    total = sum(r.in_graph_ms for r in rows)
    lines = [f"{'task':<34} {'calls':>5} {'in graph':>9} {'share':>6} {'alone':>8} "
             f"{'db best':>8} {'graph/alone':>11} {'alone/best':>10}"]
    for r in shown:
        best = "-" if r.best_ms is None else f"{r.best_ms:8.3f}"
        ratio = "-" if not r.best_ms else f"{r.alone_ms / r.best_ms:10.2f}"
        lines.append(f"{r.name[:34]:<34} {r.calls:>5} {r.in_graph_ms:9.3f} "
                     f"{100 * r.in_graph_ms / total:5.1f}% {r.alone_ms:8.3f} {best:>8} "
                     f"{r.in_graph_ms / r.alone_ms:11.2f} {ratio:>10}")
    if len(shown) < len(order):
        lines.append(f"... {len(order) - len(shown)} more tasks")
    alone = sum(r.alone_ms for r in rows)
    known = [r.best_ms for r in rows if r.best_ms is not None]
    best_total = f"{sum(known):.3f} ms" if len(known) == len(rows) else (
        f"{sum(known):.3f} ms over {len(known)} of {len(rows)} tasks")
    lines.append(f"total: in graph {total:.3f} ms, alone {alone:.3f} ms, "
                 f"database bests {best_total}")
    return "\n".join(lines)
