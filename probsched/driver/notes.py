"""What a tuning run notes in its database beside the records, for the report.

Records say what each candidate measured; a report also wants what they are read against and
where they were taken: numpy's time for the same op (and the BLAS kernel that ran), the
machine's measured FMA peak, the target described in words, the versions of what built and
ran the code, and the best candidate's loop nest (the database keeps workloads as text and
cannot replay a trace without the workload object). One note per workload and target
(:func:`note_key`), replaced by each run's (``Database.put_note``).
"""

from __future__ import annotations

import functools
import platform
import time
from importlib import metadata

from ..ir.compute import Workload
from ..search.database import Database
from ..search.tuner import TuneResult
from ..target import CpuTarget, Target


def note_key(workload_hash: str, target_key: str) -> str:
    """The note of a workload (by structural hash) on a target (by key)."""
    return f"tune {workload_hash} {target_key}"


@functools.cache
def versions() -> dict[str, str]:
    """The versions of probsched and what builds and runs its code, here."""
    import llvmlite
    import llvmlite.binding as llvm
    import numpy

    try:
        ours = metadata.version("probsched")
    except metadata.PackageNotFoundError:
        ours = "unknown (not installed)"
    return {
        "probsched": ours,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "llvmlite": llvmlite.__version__,
        "llvm": ".".join(str(v) for v in llvm.llvm_version_info),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


@functools.cache
def cpu_model() -> str:
    """The CPU's model name as the OS gives it (``lscpu``'s "Model name"), with its family
    and model numbers: a VM's "AMD EPYC" alone was a Zen 3 one session, a Zen 5 the next."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not line.strip():
                    break  # the first processor's fields are enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']} model {fields['model']})"
    return name


def note_run(db: Database, workload: Workload, target: Target, result: TuneResult, *,
             cluster: str | None = None) -> None:
    """Note ``result``'s baselines, peak, target, versions and best loop nest in ``db``
    (``cluster``: the Dask scheduler that measured, if one did)."""
    ref, peak = result.reference, result.peak
    note: dict = {
        "workload": workload.name,
        "flops": workload.flops,
        "target": target.key,
        "target_description": target.describe(),
        "cpu_model": cpu_model() if isinstance(target, CpuTarget) else None,
        "versions": versions(),
        "cluster": cluster,
        "noted": time.time(),
        "trials": result.trials,
        "wall_s": result.wall_s,
        "numpy_s": None if ref is None else ref.seconds,
        "numpy_kernel": None if ref is None else ref.kernel,
        "numpy_threads": None if ref is None else ref.threads,
        "peak_one_core_gflops": None if peak is None else peak.one_core_gflops,
        "peak_all_cores_gflops": None if peak is None else peak.all_cores_gflops,
        "peak_cores": None if peak is None else peak.cores,
        "best_latency_s": result.best_latency_s if result.best_gflops else None,
        "best_decisions": None if result.best_trace is None
        else result.best_trace.key,
        "best_program": None if result.best_program is None else str(result.best_program),
    }
    db.put_note(note_key(workload.structural_hash, target.key), note)


__all__ = ["cpu_model", "note_key", "note_run", "versions"]
