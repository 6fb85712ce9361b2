"""What a Dask worker runs for probsched: builds and measurements, from JSON text.

Each task gets its data as :mod:`.wire` text (a program, a target, a compiled kernel, a
workload) and answers in it too. On the worker, the work goes to probsched's own isolated
processes: builds to a :class:`~probsched.measure.Builder` per task thread, measurements to a
:class:`~probsched.measure.Runner` per role (a tuner's runs and its re-timings have processes of
their own), kept for the worker's life. So a compiler crash or a crashing kernel costs a
candidate, never the Dask worker.

Builds take the machine's lock shared (builds of several workers on one host run side by
side, never beside a timed run); runs take it exclusively, as everywhere.

A Dask worker must not be a daemon process (daemons may not start children): start it with
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` (:func:`problem` says so when it is).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import socket
import threading
from collections import OrderedDict
from typing import Any

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..measure.builder import Builder, BuildResult
from ..measure.contention import MachineLock
from ..measure.runner import RunConfig, Runner
from . import wire

_local = threading.local()  # this task thread's builders, by target and passes
_runners: dict[tuple[str, RunConfig], Runner] = {}
_runners_lock = threading.Lock()
_workloads: OrderedDict[str, Workload] = OrderedDict()
_workloads_lock = threading.Lock()
KEPT_WORKLOADS = 8


def problem() -> str | None:
    """Why this process cannot serve probsched's tasks (None: it can)."""
    if multiprocessing.current_process().daemon:
        return ("the Dask worker is a daemon process, which may not start probsched's build "
                "and measurement processes: start workers with "
                "DASK_DISTRIBUTED__WORKER__DAEMON=False")
    return None


def limit_retries(dask_scheduler: Any, allowed: int) -> int:
    """Run on the scheduler: a task whose worker dies is retried ``allowed`` times, then
    fails (Dask's ``KilledWorker``). Returns the previous setting."""
    before = int(dask_scheduler.allowed_failures)
    dask_scheduler.allowed_failures = allowed
    return before


def resolve_pass(name: str):
    """A lowering pass from its ``module:qualname`` (module-level functions of importable
    modules only)."""
    module, _, attr = name.partition(":")
    fn = getattr(importlib.import_module(module), attr, None)
    if not callable(fn) or pass_name(fn) != name:
        raise ProbschedError(f"{name!r} is not a module-level lowering pass")
    return fn


def pass_name(fn: Any) -> str:
    """``module:qualname`` of a module-level function (what travels instead of the code)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def build(program_json: str, target_json: str, passes: tuple[tuple[str, str], ...],
          timeout_s: float) -> str:
    """Compile a program (wire text) for a target: a BuildResult as wire text."""
    key = (target_json, passes, timeout_s)
    builders = getattr(_local, "builders", None)
    if builders is None:
        builders = _local.builders = {}
    builder = builders.get(key)
    if builder is None:
        builder = Builder(workers=1, timeout_s=timeout_s, target=wire.loads(target_json),
                          passes=tuple((n, resolve_pass(p)) for n, p in passes))
        builder.lock = MachineLock(shared=True)
        builders[key] = builder
    try:
        program = wire.loads(program_json)
    except ProbschedError as exc:
        return wire.dumps(BuildResult(None, str(exc), "error"))
    return wire.dumps(builder.build(program))


def run(artifact_json: str, workload_json: str, seed: int, slow_s: float | None,
        config_json: str, role: str) -> str:
    """Check and time a compiled kernel (wire text) of a workload (wire text) in this
    worker's runner for ``role``: a RunResult as wire text, or ``{"error": ...}`` when the
    workload itself cannot be measured here (no candidate's fault)."""
    config: RunConfig = wire.loads(config_json)
    with _runners_lock:
        runner = _runners.get((role, config))
        if runner is None:
            runner = Runner(config.timeout_s, config.warmup, config.min_repeats,
                            config.max_repeats, config.min_time_s)
            _runners[(role, config)] = runner
    try:
        result = runner.run(wire.loads(artifact_json), _workload(workload_json), seed=seed,
                            slow_s=slow_s)
    except ProbschedError as exc:
        return json.dumps({"error": str(exc)})
    return wire.dumps(result)


def run_batch(artifact_jsons: list[str], workload_json: str, seed: int,
              slow_s: float | None, config_json: str, role: str) -> list[str]:
    """:func:`run` for each of a batch of kernels, one after another in this worker's runner:
    one Dask task for a machine's share of a round (per-task round trips beside the timed
    kernel cost more than the measurement on small kernels: docs/distributed.md)."""
    return [run(a, workload_json, seed, slow_s, config_json, role) for a in artifact_jsons]


def machine_identity() -> str:
    """The machine this worker measures on: ``PROBSCHED_MACHINE`` if set, else the host's
    name. Workers on one host share its cores and its measurement lock, so they are one
    machine: the runner sends a machine's work to one of them."""
    return os.environ.get("PROBSCHED_MACHINE") or socket.gethostname()


def _workload(text: str) -> Workload:
    with _workloads_lock:
        wl = _workloads.get(text)
        if wl is None:
            wl = _workloads[text] = wire.loads(text)
            while len(_workloads) > KEPT_WORKLOADS:
                _workloads.popitem(last=False)
        _workloads.move_to_end(text)
        return wl


__all__ = ["build", "limit_retries", "machine_identity", "pass_name", "problem",
           "resolve_pass", "run", "run_batch"]
