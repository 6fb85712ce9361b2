"""Distributed measurement on Dask (the distributed extra): what travels (JSON text, rebuilt on
arrival), a tune on a LocalCluster of two worker processes (the same records as a local tune,
all correct, in the database), and workers killed mid-build (retried once elsewhere, then
recorded as failed)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import pytest

import probsched as ps
from probsched.driver import cli, dask_worker, wire
from probsched.errors import MeasureError, ProbschedError
from probsched.lang.loader import generated_space
from probsched.measure import Builder, RunResult
from probsched.search.database import Database
from probsched.testing import slow

SMALL = {"population": 32, "init_min_fresh": 8}


def _program(wl, seed=0, slow_ms=0):
    sch = ps.Schedule(wl, seed=seed)
    generated_space().apply(sch)
    if slow_ms:
        sch.annotate(sch.get_loops(sch.get_block("C"))[0], slow.SLOW, slow_ms)
    return sch.program


# ------------------------------------------------------------ what travels (no Dask needed)


def test_workloads_programs_kernels_and_results_survive_the_wire():
    wl = ps.workloads.cbr(n=1, h=8, w=8, ci=4, co=8, kernel=3, stride=1, pad=1)
    assert wire.loads(wire.dumps(wl)) == wl
    gmm = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    program = _program(gmm, seed=3)
    again = wire.loads(wire.dumps(program))
    assert again == program and str(again) == str(program)
    with Builder(workers=1) as builder:
        built = builder.build(program)
    back = wire.loads(wire.dumps(built))
    assert back.artifact.object_code == built.artifact.object_code
    assert back.artifact.signature == built.artifact.signature
    assert ps.measure(back.artifact, gmm).correct
    failed = RunResult.failed("crash", "crashed: SIGSEGV")
    back = wire.loads(wire.dumps(failed))
    assert (back.error, back.error_kind) == (failed.error, failed.error_kind)
    assert math.isinf(back.latency_s) and math.isnan(back.max_abs_err)


def test_the_wire_carries_data_never_code():
    with pytest.raises(wire.WireError, match="cannot send a builtin_function_or_method"):
        wire.dumps(len)
    with pytest.raises(wire.WireError, match="unknown class 'Popen'"):
        wire.loads('{"@": "Popen", "args": ["sh"]}')
    with pytest.raises(ProbschedError, match="module-level lowering pass"):
        dask_worker.resolve_pass("os:system.__call__")


def test_a_daemon_worker_is_told_how_to_start(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert "DASK_DISTRIBUTED__WORKER__DAEMON=False" in dask_worker.problem()


# ------------------------------------------------------------ on a LocalCluster


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed", reason="the distributed extra is not installed")
    from probsched.driver.dask_measure import local_cluster

    with local_cluster(2) as c:
        yield c


@pytest.fixture
def client(cluster):
    import distributed

    with distributed.Client(cluster.scheduler_address) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def test_tune_on_the_cluster_records_what_a_local_tune_records(tmp_path, cluster):
    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    local = ps.tune(wl, trials=8, db=str(tmp_path / "local.db"), progress=False,
                    reference=False, seed=1, **SMALL)
    remote = ps.tune(wl, trials=8, db=str(tmp_path / "dask.db"), progress=False,
                     reference=False, seed=1, cluster=cluster.scheduler_address, **SMALL)
    assert local.trials == remote.trials == 8
    assert local.failures == remote.failures == 0
    with Database(tmp_path / "dask.db") as db:
        records = db.records(wl)
        note = next(iter(db.notes().values()))
    assert sum(not r.repeat for r in records) == 8 and all(r.ok for r in records)
    assert any(r.repeat for r in records)  # the fastest were timed again, on the cluster
    assert note["cluster"] == cluster.scheduler_address
    assert ps.measure(remote.best_trace.replay(wl)).correct


@pytest.mark.slow
def test_cli_tune_cluster(tmp_path, cluster, capsys):
    src = tmp_path / "mm.sched"
    src.write_text("workload gmm(n = 16, m = 16, k = 16):\n    input A: float32[n, k]\n"
                   "    input B: float32[k, m]\n    C[i, j] = sum(A[i, r] * B[r, j])\n")
    db = tmp_path / "runs.db"
    assert cli.main(["tune", str(src), "--trials", "4", "--db", str(db), "--quiet",
                     "--cluster", cluster.scheduler_address]) == 0
    assert "tuned gmm: 4 new trials (0 failed)" in capsys.readouterr().out
    assert cli.main(["tune", str(src), "--trials", "4", "--db", str(db),
                     "--cluster", "tcp://127.0.0.1:9"]) == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def _kill_the_builder(client, times: int) -> list[int]:
    """Kill (SIGKILL) the worker building the slow candidate (the batch's first: its task's
    key ends in -0) after 1 s there, ``times`` times; the pids killed."""
    killed: list[int] = []
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(killed) < times and time.monotonic() < deadline:
        time.sleep(0.1)
        now = time.monotonic()
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("probsched-build") and str(k).endswith("-0")
                       for k in keys)]
        if not busy or now - seen.setdefault(busy[0], now) < 1.0:
            continue
        pid = client.run(os.getpid, workers=[busy[0]]).get(busy[0])
        if pid is not None and pid not in killed:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


@pytest.mark.parametrize("deaths", [1, 2])
def test_a_dead_worker_loses_only_its_candidate_retried_once_elsewhere(client, deaths):
    from probsched.driver.dask_measure import DaskBuilder

    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    builder = DaskBuilder(client, passes=slow.PASSES)
    killer = []
    thread = threading.Thread(target=lambda: killer.extend(_kill_the_builder(client, deaths)))
    thread.start()
    slow_one, fine = builder.build_many([_program(wl, 0, slow_ms=4000), _program(wl, 1)])
    thread.join()
    assert len(killer) == deaths
    assert fine.ok  # the other candidate is not disturbed
    if deaths == 1:  # retried on the other worker
        assert slow_one.ok and ps.measure(slow_one.artifact, wl).correct
    else:
        assert slow_one.error_kind == "crash"
        assert "the Dask workers measuring it died (2 tries)" in slow_one.error


def _kill_the_measurer(client, times: int) -> list[int]:
    """Kill (SIGKILL) the worker measuring a batch after 1 s there, ``times`` times."""
    killed: dict[str, int] = {}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(killed) < times and time.monotonic() < deadline:
        time.sleep(0.1)
        now = time.monotonic()
        busy = [w for w, keys in client.processing().items() if w not in killed
                and any(str(k).startswith("probsched-run") for k in keys)]
        if not busy or now - seen.setdefault(busy[0], now) < 1.0:
            continue
        pid = client.run(os.getpid, workers=[busy[0]]).get(busy[0])
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed[busy[0]] = pid
    return list(killed.values())


@pytest.mark.parametrize("deaths", [1, 2])
def test_a_dead_measurer_loses_only_its_batch_retried_once_elsewhere(client, deaths):
    from probsched.driver.dask_measure import DaskRunner

    wl = ps.workloads.gmm(b=1, n=16, m=16, k=16)
    with Builder(workers=1) as builder:
        artifacts = [builder.build(_program(wl, seed)).artifact for seed in range(3)]
    runner = DaskRunner(client, min_time_s=1.0, max_repeats=10**7)  # a second per kernel
    killer: list[int] = []
    thread = threading.Thread(target=lambda: killer.extend(_kill_the_measurer(client, deaths)))
    thread.start()
    results = list(runner.run_many(artifacts, wl))
    thread.join()
    assert len(killer) == deaths and len(results) == 3, (killer, results)
    if deaths == 1:  # the batch went to another worker of the machine, and was measured
        assert all(r.ok and r.correct for r in results)
    else:
        assert {r.error_kind for r in results} == {"crash"}
        assert all("the Dask workers measuring it died (2 tries)" in r.error for r in results)


class _FakeClient:
    """Enough of a ``distributed.Client`` for choosing the machines' workers."""

    def __init__(self, hosts: dict[str, str | None]):
        self.hosts = hosts  # worker -> machine identity (None: owns no machine)

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": {w: {"resources": {"machine": 1} if h else {}}
                            for w, h in self.hosts.items()}}

    def run(self, fn, workers, on_error="raise"):
        assert fn is dask_worker.machine_identity
        return {w: self.hosts[w] for w in workers}


def test_workers_of_one_host_are_one_machine_measured_by_one_of_them():
    from probsched.driver.dask_measure import DaskRunner

    runner = DaskRunner(_FakeClient({"tcp://b:2": "hostb", "tcp://a:9": "hosta",
                                     "tcp://a:1": "hosta", "tcp://c:1": None}))
    assert runner._machines() == ["tcp://a:1", "tcp://b:2"]
    assert dask_worker.machine_identity()  # this host's name, or PROBSCHED_MACHINE


@pytest.mark.slow
def test_a_worker_killed_mid_tune_costs_at_most_its_candidates(tmp_path, cluster, client):
    wl = ps.workloads.gmm(b=1, n=32, m=32, k=32)
    pids = list(client.run(os.getpid).values())
    timer = threading.Timer(4.0, os.kill, (pids[0], signal.SIGKILL))
    timer.start()
    result = ps.tune(wl, trials=24, db=str(tmp_path / "runs.db"), progress=False,
                     reference=False, cluster=client, **SMALL)
    timer.join()
    assert result.trials == 24
    with Database(tmp_path / "runs.db") as db:
        records = [r for r in db.records(wl) if not r.repeat]
    assert len(records) == 24
    assert all(r.ok or "died" in (r.error or "") for r in records)


def test_no_machine_worker_is_an_error_not_a_hang():
    distributed = pytest.importorskip("distributed",
                                      reason="the distributed extra is not installed")
    from probsched.driver.dask_measure import DaskRunner

    wl = ps.workloads.gmm(b=1, n=8, m=8, k=8)
    with Builder(workers=1) as builder:
        artifact = builder.build(_program(wl)).artifact
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as c, \
            distributed.Client(c) as client:
        runner = DaskRunner(client, machine_wait_s=1.0)
        with pytest.raises(MeasureError, match="no worker of the Dask cluster owns a machine"):
            runner.run(artifact, wl)
