"""The export half of ``probsched dataset``: a database's records as a pretrained set.

Each candidate (a workload's distinct decisions on the target) becomes one row: its trace is
replayed on the workload (rebuilt from the database's text: the suite's builder named in it,
called with its parameters, checked by structural hash; a workload that is not the suite's is
left out, and said so), featurized as the GBDT's row (``program_rows``), and labelled by its
normalized throughput within the workload (the best candidate's latency / its latency; a
candidate's latency is the median of its clean timings, re-timings included; failed: 0).
The sidecar names the target and the CPU the records were measured on (``lscpu``), the
feature version and names, every workload with its counts, and how the set was made; the
candidates' traces go beside (``NAME.traces.jsonl.gz``, row order), for models that rebuild
the programs.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import workloads as suite_workloads
from ..errors import ProbschedError
from ..ir.compute import Workload
from ..search.cost_model import normalized_throughput, program_rows
from ..search.database import Database
from ..search.features import program_features
from ..search.pretrained import PretrainedSet, save, save_traces
from ..search.records import Record, WorkloadRow
from ..target import CpuTarget, resolve
from ..workloads import SUITE
from .dataset import RANDOM_SPACE, SHAPES

_HEADER = re.compile(r"workload (\w+)\(([^)]*)\)")


def rebuild(row: WorkloadRow) -> tuple[str, dict[str, int], Workload] | None:
    """(op, parameters, workload) of a stored workload the suite can build again, else
    None."""
    m = _HEADER.match(row.text)
    fn = getattr(suite_workloads, m.group(1), None) if m else None
    if m is None or not callable(fn):
        return None
    try:
        params = {k.strip(): int(v) for k, v in (p.split("=") for p in m.group(2).split(","))}
        wl = fn(**params)
    except (ValueError, TypeError, ProbschedError):
        return None
    if wl.structural_hash != row.structural_hash:
        return None
    op = next((name for name, (f, _, _) in SUITE.items() if f is fn), m.group(1).upper())
    return op, params, wl


def cpu_description(target: CpuTarget) -> dict[str, Any]:
    """The target (probsched's key and description) and the CPU as ``lscpu`` names it."""
    info: dict[str, Any] = {"key": target.key, "description": target.describe(),
                            "llvm_cpu": target.cpu, "vector_bits": target.vector_bits,
                            "cores": target.cores, "machine": platform.machine()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    for ours, theirs in (("vendor", "Vendor ID"), ("model_name", "Model name"),
                         ("family", "CPU family"), ("model", "Model"),
                         ("stepping", "Stepping"), ("hypervisor", "Hypervisor vendor"),
                         ("l1d", "L1d cache"), ("l2", "L2 cache"), ("l3", "L3 cache")):
        if theirs in fields:
            info[ours] = fields[theirs]
    flags = set(fields.get("Flags", "").split())
    if flags:
        info["vector_isa"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in flags]
    return info


def _candidates(records: Sequence[Record]) -> list[tuple[Record, float, bool]]:
    """Per distinct decisions: (first record, median of clean ok timings or inf, searched)."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.decisions, []).append(r)
    out = []
    for recs in groups.values():
        ok = [r.latency_s for r in recs if r.ok]
        clean = [r.latency_s for r in recs if r.ok and not r.loaded] or ok
        latency = statistics.median(clean) if clean else float("inf")
        out.append((recs[0], latency, recs[0].space != RANDOM_SPACE))
    return out


def export(db: str | os.PathLike[str] | Database, out: str | os.PathLike[str], *,
           target: CpuTarget | str | None = None, command: str | None = None,
           progress: Callable[[str], None] | None = None) -> tuple[Path, Path, dict]:
    """Write ``db``'s records measured on ``target`` (the host by default) as a pretrained set
    at ``out`` (``.npz`` and ``.json``; see the module docstring); the two paths and the
    sidecar's counts."""
    tgt = resolve(target)
    if not isinstance(tgt, CpuTarget):
        raise ProbschedError(f"dataset: CPU targets only, not {tgt.describe()}")
    say = progress or (lambda msg: None)
    own = not isinstance(db, Database)
    database = db if isinstance(db, Database) else Database(db, readonly=True)
    rows: list[np.ndarray] = []
    latency: list[float] = []
    group: list[int] = []
    all_traces: list = []
    searched: list[bool] = []
    metas: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        for wrow in database.workloads():
            built = rebuild(wrow)
            if built is None:
                skipped.append(wrow.name)
                continue
            op, params, wl = built
            cands = _candidates(database.records(wl, target=tgt.key))
            if not cands:
                continue
            feats, traces, kept = [], [], []
            for rec, lat, was_searched in cands:
                try:
                    program = rec.trace.replay(wl, target=tgt).program
                except ProbschedError:
                    continue
                feats.append(program_features(program))
                traces.append(rec.trace)
                kept.append((lat, was_searched))
            if not kept:
                continue
            rows.append(program_rows(feats, traces))
            all_traces += traces
            latency += [lat for lat, _ in kept]
            searched += [s for _, s in kept]
            group += [len(metas)] * len(kept)
            shape = next((k for k, p in enumerate(SHAPES.get(op, ())) if p == params), None)
            ok = [lat for lat, _ in kept if np.isfinite(lat)]
            metas.append({"name": wl.name, "op": op, "shape": shape, "params": params,
                          "structural_hash": wl.structural_hash, "flops": wl.flops,
                          "rows": len(kept), "searched": sum(s for _, s in kept),
                          "failed": len(kept) - len(ok),
                          "best_latency_s": min(ok) if ok else None})
            say(f"{op} {params}: {len(kept)} rows")
    finally:
        if own:
            database.close()
    if not metas:
        raise ProbschedError(f"{getattr(database, 'path', db)}: no records of suite workloads "
                             f"on target {tgt.key} to export")
    lats = np.array(latency, dtype=np.float64)
    wid = np.array(group, dtype=np.int32)
    counts = {"rows": len(lats), "workloads": len(metas), "searched": int(sum(searched)),
              "random": len(lats) - int(sum(searched)),
              "failed": int((~np.isfinite(lats)).sum()),
              "skipped_workloads": skipped}
    meta = {"target": cpu_description(tgt), "workloads": metas, "counts": counts,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": command, "label": "normalized throughput within the workload"}
    data = PretrainedSet(np.vstack(rows), normalized_throughput(lats, wid), lats, wid,
                         np.array(searched, dtype=bool), meta)
    npz, sidecar = save(out, data)
    save_traces(out, all_traces)
    return npz, sidecar, counts


__all__ = ["cpu_description", "export", "rebuild"]
