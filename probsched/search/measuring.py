"""How the tuner measures a round and re-times its fastest: one candidate at a time, or all
at once through a runner's optional ``run_many``.

A runner that only has ``run`` (the local :class:`~probsched.measure.Runner`, the GPU runner)
measures the round's candidates one after another, each with the slow bar of the best so far
(a loser is timed once, tuner.py's ``SLOW_FACTOR``). A runner that also has
``run_many(artifacts, workload, slow_s=...)``, an iterator of results in the artifacts'
order (the Dask runner), gets the whole round at once, with the bar of the best at the
round's start: its tasks queue on the remote machines while earlier ones are measured, so
the round trips overlap instead of adding up. Either way the results come back in the
candidates' order, so the callbacks hear them in that order.

Re-timings likewise: the round's ``top`` fastest are timed again all at once through
``run_many``; each further candidate (one whose single timing beats the best confirmed median)
is decided once those are in, as one after another.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..ir.compute import Workload
from ..measure import RunResult
from .callbacks import MeasureCallback
from .records import succeeded
from .rounds import PhaseClock
from .strategy import Candidate


def measure_round(runner: Any, workload: Workload, built: Sequence[Any],
                  slow_s: Callable[[], float | None], clock: PhaseClock) -> Iterator[RunResult]:
    """One result per build of ``built``, in order (a failed build's is a failed result);
    ``slow_s()`` is the slow bar now (read before each run, or once with ``run_many``). The
    seconds spent waiting for the runner go to ``clock``'s "run" phase."""
    run_many = getattr(runner, "run_many", None)
    if run_many is None:
        for b in built:
            if not b.ok:
                yield RunResult.failed("build", b.error or "build failed")
                continue
            with clock("run"):
                res = runner.run(b.artifact, workload, slow_s=slow_s())
            yield res
        return
    with clock("run"):
        results = run_many([b.artifact for b in built if b.ok], workload, slow_s=slow_s())
    for b in built:
        if not b.ok:
            yield RunResult.failed("build", b.error or "build failed")
            continue
        with clock("run"):
            res = next(results)
        yield res


def retime(retimer: Any, workload: Workload, batch: Sequence[Candidate], built,
           results: Sequence[RunResult], timings: dict[str, list[float]],
           sinks: Sequence[MeasureCallback], top: int, times: int) -> None:
    """Time the round's ``top`` fastest clean candidates ``times`` more times in another
    worker, and any further one whose single timing beats the best confirmed median (at most
    ``2 * top``): a candidate becomes the best only once timed again. Each timing is a
    record (through the sinks' ``retimed``) and joins the candidate's timings, whose median
    is its figure."""
    fastest = sorted((res.latency_s, k) for k, res in enumerate(results)
                     if succeeded(res) and not res.loaded)
    batched = getattr(retimer, "run_many", None) is not None
    first = fastest[:top] if batched else []
    if first:
        _timed(retimer, workload, batch, built, [k for _, k in first], timings, sinks, times)
    for done, (latency, k) in enumerate(fastest[len(first):], start=len(first)):
        if done >= 2 * top or (done >= top and latency >= confirmed(timings)):
            break
        _timed(retimer, workload, batch, built, [k], timings, sinks, times)


def _timed(retimer: Any, workload: Workload, batch: Sequence[Candidate], built,
           chosen: Sequence[int], timings: dict[str, list[float]],
           sinks: Sequence[MeasureCallback], times: int) -> None:
    """Time each of ``chosen`` (indices into the round) ``times`` times, in that order."""
    order = [k for k in chosen for _ in range(times)]
    artifacts = [built[k].artifact for k in order]
    assert all(a is not None for a in artifacts)  # they were measured
    if getattr(retimer, "run_many", None) is not None:
        answers: Iterator[RunResult] = retimer.run_many(artifacts, workload)
    else:
        answers = (retimer.run(a, workload) for a in artifacts)
    for k, res in zip(order, answers, strict=True):
        for s in sinks:
            s.retimed(batch[k], res)
        if succeeded(res) and not res.loaded:
            timings.setdefault(batch[k].key, []).append(res.latency_s)


def confirmed(timings: dict[str, list[float]]) -> float:
    """The best median among candidates timed more than once (inf: none yet)."""
    return min((statistics.median(t) for t in timings.values() if len(t) > 1),
               default=math.inf)


__all__ = ["confirmed", "measure_round", "retime"]
