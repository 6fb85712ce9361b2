"""Distributed measurement on Dask: a builder and a runner behind the tuner's interfaces.

``ps.tune(..., cluster="tcp://HOST:8786")`` (or a ``distributed.Client``) builds each
candidate on any worker of the cluster and measures it on a worker that owns a machine: one
started with the Dask resource ``machine=1`` (:data:`MACHINE`), so that the scheduler runs one
measurement at a time per machine, whoever asks. Results and failures come back to the tuner,
which records them in its database as for a local tune. What travels is JSON text
(:mod:`.wire`: the program, the target, the compiled kernel, the workload, the result),
rebuilt on the other side; the worker's side is :mod:`.dask_worker`.

Workers on one host are one machine (:func:`.dask_worker.machine_identity`): measurements go
to one of them, in batches (one task per :data:`BATCH_MAX` kernels), and the other workers
build. A worker that dies loses only the candidates it had in flight: a build is retried once
elsewhere by the scheduler (:data:`RETRIES`, set on the scheduler when we connect), a batch by
the runner, and a candidate whose second worker dies too is recorded as failed ("crash"),
with the reason. The tuner's re-timings go to a runner of their own on the machine workers
(:class:`DaskRunner` ``role="retime"``).

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
from dataclasses import dataclass
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
BATCH_MAX = 16
"""The most kernels one measuring task carries (a dead worker costs at most these)."""
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


def _died(why: object) -> str:
    told = f"{type(why).__name__}: {why}" if isinstance(why, BaseException) else str(why)
    return f"the Dask workers measuring it died ({RETRIES + 1} tries): {told}"


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
    """Checks and times compiled candidates on the cluster's machines (the tuner's ``runner=``
    and ``retimer=``). ``role``: the runner process on the worker (a tuner's runs and its
    re-timings each have one). The timing options are :class:`~probsched.measure.Runner`'s.

    A machine is what :func:`~.dask_worker.machine_identity` names (a host): of the workers
    that own one (resource :data:`MACHINE`), the runner measures on one per machine, the same
    one every time (its runner process keeps the workload's inputs and reference), a batch of
    kernels per task (:data:`BATCH_MAX`), restricted to that worker so that Dask's work
    stealing cannot move it beside another measurement on the same host."""

    def __init__(self, client: Any, timeout_s: float = 10.0, warmup: int = 1,
                 min_repeats: int = 3, max_repeats: int = 100, min_time_s: float = 0.05, *,
                 role: str = "run", machine_wait_s: float = MACHINE_WAIT_S):
        self.client = client
        self.role = role
        self.machine_wait_s = machine_wait_s
        self._config_json = wire.dumps(RunConfig(timeout_s, warmup, min_repeats, max_repeats,
                                                 min_time_s))
        self._workloads: dict[str, str] = {}
        self._measurers: list[str] = []  # one worker address per machine

    def run(self, artifact: CompiledArtifact | GpuKernel, workload: Workload, *, seed: int = 0,
            slow_s: float | None = None) -> RunResult:
        """Measure ``artifact`` on a machine worker; see the class docstring."""
        return next(self.run_many([artifact], workload, seed=seed, slow_s=slow_s))

    def run_many(self, artifacts: Sequence[CompiledArtifact | GpuKernel], workload: Workload,
                 *, seed: int = 0, slow_s: float | None = None) -> Iterator[RunResult]:
        """Measure every artifact, all sent at once: consecutive batches of at most
        :data:`BATCH_MAX`, dealt to the machines in turn (on one machine they queue on its
        resource, so one batch's round trip overlaps another's measurement). The results in
        the artifacts' order, each batch's as it arrives. A batch whose worker dies is sent to
        a live machine; when it dies there too its candidates are failed ("crash"). Batches
        not yet answered when the iterator is dropped are cancelled."""
        h = workload.structural_hash
        wl_json = self._workloads.get(h)
        if wl_json is None:
            wl_json = self._workloads[h] = wire.dumps(workload)
        texts = [wire.dumps(a) for a in artifacts]
        if not texts:
            return
        size = max(1, min(BATCH_MAX, -(-len(texts) // len(self._machines()))))
        key = _key(self.role)  # the tasks' keys: KEY-BATCH-DEATHS
        batches = [_Batch(j, texts[i:i + size]) for j, i in enumerate(range(0, len(texts), size))]

        def send(batch: _Batch) -> None:
            workers = self._machines()
            batch.worker = workers[batch.index % len(workers)]
            batch.future = self.client.submit(
                dask_worker.run_batch, batch.texts, wl_json, seed, slow_s, self._config_json,
                self.role, key=f"{key}-{batch.index}-{batch.deaths}", pure=False,
                resources={MACHINE: 1}, workers=[batch.worker], allow_other_workers=False)

        for batch in batches:
            send(batch)
        try:
            for batch in batches:
                while batch.results is None:
                    self._collect([b for b in batches if b.results is None], send)
                yield from batch.results
        finally:
            self.client.cancel([b.future for b in batches if b.results is None])

    def _collect(self, waiting: list[_Batch], send) -> None:
        """Wait up to a second for the waiting batches; take the answers of those done (at
        once: a finished batch's data lives on its worker until fetched) and send again what
        a worker that left held."""
        distributed = _distributed()
        try:
            done = distributed.wait([b.future for b in waiting], timeout=1.0,
                                    return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        for batch in waiting:
            if batch.future not in done:
                continue
            try:
                batch.results = [self._answer(t) for t in batch.future.result()]
            except distributed.KilledWorker as exc:
                self._measurers = []  # choose the machines' workers again
                self._lost(batch, True, exc, send)
        if done:
            return
        gone = {b.worker for b in waiting} - set(machines(self.client))
        if gone:
            self._measurers = []
        for worker in gone:
            lost = [b for b in waiting if b.worker == worker]
            self.client.cancel([b.future for b in lost])
            for b in lost:  # a worker takes its batches in order: the first was in flight
                self._lost(b, b is lost[0], f"worker {worker} left the cluster", send)

    @staticmethod
    def _lost(batch: _Batch, in_flight: bool, why: object, send) -> None:
        """Send ``batch`` again, or fail its candidates when its second worker died."""
        batch.deaths += in_flight
        if batch.deaths > RETRIES:
            batch.results = [RunResult.failed("crash", _died(why)) for _ in batch.texts]
            return
        send(batch)

    @staticmethod
    def _answer(text: str) -> RunResult:
        data = json.loads(text)
        if "error" in data and "@" not in data:
            raise MeasureError(data["error"])
        return wire.loads(text)

    def _machines(self) -> list[str]:
        """One worker per machine (the first address of each :func:`~.dask_worker.
        machine_identity`), chosen once and again after a loss; a MeasureError when no worker
        owns a machine for ``machine_wait_s``."""
        since = time.monotonic()
        while not self._measurers:
            workers = sorted(machines(self.client))
            names = self.client.run(dask_worker.machine_identity, workers=workers,
                                    on_error="return") if workers else {}
            first: dict[str, str] = {}
            for worker in workers:
                if isinstance(names.get(worker), str):
                    first.setdefault(names[worker], worker)
            self._measurers = list(first.values())
            if self._measurers:
                break
            if time.monotonic() - since > self.machine_wait_s:
                raise MeasureError(f"no worker of the Dask cluster owns a machine (resource "
                                   f"{MACHINE!r}) after {self.machine_wait_s:.0f} s: start "
                                   f"one with --resources {MACHINE}=1")
            time.sleep(0.5)
        return self._measurers

    def close(self) -> None:
        """Nothing to close (the workers keep their runners)."""


@dataclass(eq=False)
class _Batch:
    """Consecutive kernels of a ``run_many``, measured as one task."""

    index: int
    texts: list[str]
    deaths: int = 0  # times a worker died measuring it
    worker: str = ""
    future: Any = None
    results: list[RunResult] | None = None


def machines(client: Any) -> list[str]:
    """The addresses of the workers that own a machine."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return [a for a, w in workers.items() if w.get("resources", {}).get(MACHINE)]


def local_cluster(workers: int = 2, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes on this host, one thread each,
    each with the resource :data:`MACHINE` (being on one host they are one machine: the runner
    measures on one of them, and any of them takes over when it dies), its scheduler retrying a task
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
