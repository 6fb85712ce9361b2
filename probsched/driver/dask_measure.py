"""Distributed measurement on Dask: a builder and a runner behind the tuner's interfaces.

``ps.tune(..., cluster="tcp://HOST:8786")`` (or a ``distributed.Client``) builds each
candidate on any worker of the cluster and measures it on a worker that owns a machine: one
started with the Dask resource ``machine=1`` (:data:`MACHINE`), so that the scheduler runs one
measurement at a time per machine, whoever asks. Results and failures come back to the tuner,
which records them in its database as for a local tune. What travels is JSON text
(:mod:`.wire`: the program, the target, the compiled kernel, the workload, the result),
rebuilt on the other side; the worker's side is :mod:`.dask_worker`.

A worker that dies loses only the candidates it had in flight: the scheduler retries each once
elsewhere (:data:`RETRIES`, set on the scheduler when we connect), and a candidate whose second
worker dies too is recorded as failed ("crash"), with the reason. The tuner's re-timings go
to a runner of their own on the machine workers (:class:`DaskRunner` ``role="retime"``).

Start a cluster on real machines (docs/distributed.md)::

    dask scheduler                                     # on one host: tcp://HOST:8786
    DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker tcp://HOST:8786 --nthreads 1 \\
        --resources machine=1                          # on each machine that measures
    DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker tcp://HOST:8786   # build-only hosts

:func:`local_cluster` starts the same on this host (tests and benches).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..codegen.compile import CompiledArtifact
from ..codegen.gpu_kernel import GpuKernel
from ..codegen.llvm import LoweredKernel
from ..codegen.passes import Pass
from ..errors import MeasureError, ProbschedError
from ..ir.compute import Workload
from ..ir.program import Program
from ..measure.builder import BuildResult
from ..measure.runner import RunConfig, RunResult
from ..target import CpuTarget, CudaTarget, Target, resolve
from . import dask_worker, wire

MACHINE = "machine"
"""The Dask resource a worker that owns a machine is started with (``--resources machine=1``)."""
RETRIES = 1
"""Times the scheduler retries a task whose worker died (then it fails: ``KilledWorker``)."""
WORKER_CONFIG = {"distributed.worker.daemon": False,
                 "distributed.worker.profile.enabled": False}
"""The Dask config of the local workers: not daemons (they start probsched's processes), and
no statistical profiler (a thread waking every 10 ms in each worker, beside the timed kernel
on the same cores: docs/distributed.md)."""
MACHINE_WAIT_S = 120.0
"""How long a measurement waits for a worker owning a machine to exist before it fails."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ProbschedError("measuring on a Dask cluster needs the distributed extra: "
                             "pip install 'probsched[distributed]'") from None
    return distributed


def connect(cluster: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``cluster`` (a scheduler address such as
    ``"tcp://HOST:8786"``, or a client, used as is) and whether it was made here (then the
    caller closes it). Checks that the workers can serve probsched and makes the scheduler
    retry a task whose worker died :data:`RETRIES` times."""
    distributed = _distributed()
    if isinstance(cluster, distributed.Client):
        client, own = cluster, False
    elif isinstance(cluster, str):
        try:
            client, own = distributed.Client(cluster, timeout=30), True
        except OSError as exc:
            raise MeasureError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from None
    else:
        raise ProbschedError(f"cluster: expected a scheduler address or a distributed.Client, "
                             f"got {type(cluster).__name__}")
    try:
        problems = {w: why for w, why in client.run(dask_worker.problem).items() if why}
        if problems:
            worker, why = next(iter(problems.items()))
            raise MeasureError(f"Dask worker {worker} cannot measure: {why}")
        client.run_on_scheduler(dask_worker.limit_retries, allowed=RETRIES)
    except BaseException:
        if own:
            client.close()
        raise
    return client, own


def _key(kind: str) -> str:
    return f"probsched-{kind}-{uuid.uuid4().hex}"


def _died(exc: BaseException) -> str:
    return (f"the Dask workers measuring it died ({RETRIES + 1} tries): "
            f"{type(exc).__name__}: {exc}")


class DaskBuilder:
    """Compiles programs on any worker of ``client``'s cluster (the tuner's ``builder=``).

    ``passes``: lowering passes after the standard ones, module-level functions (they travel
    by name); ``timeout_s`` bounds one compile, as for :class:`~probsched.measure.Builder`."""

    def __init__(self, client: Any, *, target: Target | str | None = None,
                 timeout_s: float = 30.0, passes: tuple[Pass, ...] = ()):
        t = resolve(target)
        if not isinstance(t, CpuTarget | CudaTarget):
            raise ValueError(f"DaskBuilder: cannot build for {t.describe()}")
        self.client = client
        self.target = t
        self.timeout_s = timeout_s
        self.passes = tuple((name, dask_worker.pass_name(fn)) for name, fn in passes)
        for _, where in self.passes:
            dask_worker.resolve_pass(where)  # refuse a lambda or a nested function here
        self._target_json = wire.dumps(t)

    def build(self, item: Program | LoweredKernel) -> BuildResult:
        return self.build_many([item])[0]

    def build_many(self, items: Iterable[Program | LoweredKernel]) -> list[BuildResult]:
        """Compile every item on the cluster, all at once; results in the order of items."""
        distributed = _distributed()
        items = list(items)
        futures: list[Any] = []
        results: list[BuildResult | None] = [None] * len(items)
        batch = _key("build")  # the tasks' keys: BATCH-INDEX
        for i, item in enumerate(items):
            if not isinstance(item, Program):
                results[i] = BuildResult(None, f"the Dask builder builds Programs, not a "
                                         f"{type(item).__name__}", "error")
                continue
            futures.append((i, self.client.submit(
                dask_worker.build, wire.dumps(item), self._target_json, self.passes,
                self.timeout_s, key=f"{batch}-{i}", pure=False)))
        try:
            for i, future in futures:
                try:
                    results[i] = wire.loads(future.result())
                except distributed.KilledWorker as exc:
                    results[i] = BuildResult(None, _died(exc), "crash")
        finally:
            self.client.cancel([f for _, f in futures])
        done = [r for r in results if r is not None]
        assert len(done) == len(items)
        return done

    def close(self) -> None:
        """Nothing to close (the workers keep their builders)."""


class DaskRunner:
    """Checks and times compiled candidates on the cluster's workers that own a machine
    (resource :data:`MACHINE`), one at a time per machine (the tuner's ``runner=`` and
    ``retimer=``). ``role``: the runner process on the worker (a tuner's runs and its
    re-timings each have one). The timing options are :class:`~probsched.measure.Runner`'s."""

    def __init__(self, client: Any, timeout_s: float = 10.0, warmup: int = 1,
                 min_repeats: int = 3, max_repeats: int = 100, min_time_s: float = 0.05, *,
                 role: str = "run", machine_wait_s: float = MACHINE_WAIT_S):
        self.client = client
        self.role = role
        self.machine_wait_s = machine_wait_s
        self._config_json = wire.dumps(RunConfig(timeout_s, warmup, min_repeats, max_repeats,
                                                 min_time_s))
        self._workloads: dict[str, str] = {}
        # The worker that measured a workload last: its runner holds the workload's inputs
        # and reference, which another worker would have to make again.
        self._where: dict[str, str] = {}

    def run(self, artifact: CompiledArtifact | GpuKernel, workload: Workload, *, seed: int = 0,
            slow_s: float | None = None) -> RunResult:
        """Measure ``artifact`` on a machine worker; see the class docstring."""
        return next(self.run_many([artifact], workload, seed=seed, slow_s=slow_s))

    def run_many(self, artifacts: Sequence[CompiledArtifact | GpuKernel], workload: Workload,
                 *, seed: int = 0, slow_s: float | None = None) -> Iterator[RunResult]:
        """Measure every artifact on the machine workers, all sent at once (they queue on
        the machines' resource, so one task's round trip overlaps another's measurement):
        the results in the artifacts' order, each as it arrives. Tasks not yet answered when
        the iterator is dropped are cancelled."""
        distributed = _distributed()
        h = workload.structural_hash
        wl_json = self._workloads.get(h)
        if wl_json is None:
            wl_json = self._workloads[h] = wire.dumps(workload)
        where = self._where.get(h)
        near = {"workers": [where], "allow_other_workers": True} if where else {}
        batch = _key(self.role)  # the tasks' keys: BATCH-INDEX
        futures = [self.client.submit(
            dask_worker.run, wire.dumps(a), wl_json, seed, slow_s, self._config_json,
            self.role, key=f"{batch}-{i}", pure=False, resources={MACHINE: 1}, **near)
            for i, a in enumerate(artifacts)]
        try:
            for future in futures:
                try:
                    text = self._wait(future)
                except distributed.KilledWorker as exc:
                    self._where.pop(h, None)
                    yield RunResult.failed("crash", _died(exc))
                    continue
                if h not in self._where:
                    held = self.client.who_has(future).get(future.key, ())
                    if held:  # one scheduler call per workload, not per task
                        self._where[h] = next(iter(held))
                data = json.loads(text)
                if "error" in data and "@" not in data:
                    raise MeasureError(data["error"])
                yield wire.loads(text)
        finally:
            if futures:
                self.client.cancel(futures)

    def _wait(self, future: Any) -> str:
        """The task's answer; a MeasureError when no worker owns a machine for
        ``machine_wait_s``."""
        distributed = _distributed()
        alone_since: float | None = None
        while True:
            try:
                return future.result(timeout=1.0)
            except distributed.TimeoutError:
                pass
            if machines(self.client):
                alone_since = None
                continue
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > self.machine_wait_s:
                raise MeasureError(f"no worker of the Dask cluster owns a machine (resource "
                                   f"{MACHINE!r}) after {self.machine_wait_s:.0f} s: start "
                                   f"one with --resources {MACHINE}=1")

    def close(self) -> None:
        """Nothing to close (the workers keep their runners)."""


def machines(client: Any) -> list[str]:
    """The addresses of the workers that own a machine."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return [a for a, w in workers.items() if w.get("resources", {}).get(MACHINE)]


def local_cluster(workers: int = 2, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes on this host, one thread each,
    each owning the machine (resource :data:`MACHINE`: the scheduler runs one measurement at a
    time per worker, and the machine's lock one per host), its scheduler retrying a task
    :data:`RETRIES` times. Sets this process's Dask config as probsched's workers need it
    (also when a nanny restarts one): workers are not daemons, and without Dask's statistical
    profiler (:data:`WORKER_CONFIG`)."""
    distributed = _distributed()
    import dask

    dask.config.set(WORKER_CONFIG)
    with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        resources={MACHINE: 1}, **kwargs)


__all__ = ["MACHINE", "RETRIES", "DaskBuilder", "DaskRunner", "connect", "local_cluster",
           "machines"]
