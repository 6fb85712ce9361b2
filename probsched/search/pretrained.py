"""Pretrained sets: cost-model rows measured once, shipped, and fitted on from a tune's start.

A set is two files: ``NAME.npz`` (numpy arrays, read with ``allow_pickle=False``) and
``NAME.json`` beside it (what the rows are). The arrays:

- ``rows``: float32, one row per measured candidate, the GBDT's input
  (:func:`~probsched.search.cost_model.program_rows`: program row, then trace features);
- ``labels``: float32, the normalized throughput of the candidate within its workload
  (best latency of the workload / its latency; failed: 0);
- ``latency_s``: float64, the measured median (inf: failed);
- ``workload``: int32, the index of the row's workload in the sidecar's ``workloads``;
- ``searched``: bool, whether the row came from a tune (else a random sample of the space).

The sidecar holds ``format``, ``feature_version`` and ``feature_names`` (the row layout, see
:func:`feature_version`), ``target`` (the CPU measured on: the probsched target's key and
description, and what ``lscpu`` says), ``workloads`` (name, op, shape parameters, structural
hash, FLOPs, record counts) and ``counts``, ``created``, ``command``. A set whose feature
version is not this probsched's is refused (:class:`~probsched.errors.DatasetError`): its
columns would mean other things (one exception below).

A set may carry its candidates' traces (``NAME.traces.jsonl.gz``: one trace's JSON per line,
in row order; :func:`save_traces`, :func:`load_traces`; ``probsched dataset`` writes them),
from which any model can rebuild the programs: the neural cost models need them, the rows do
not say a loop tree.

The shipped set (:func:`shipped_path`) lives in ``probsched/search/data/``; ``probsched
dataset`` makes one (:mod:`probsched.driver.dataset`). A set made before an instruction kind
was added still loads: its rows get that kind's columns as zeros (no trace of it used the
kind); any other difference of layout is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, ProbschedError
from ..schedule.trace import Trace
from . import features as F
from .trace_features import KINDS, MAX_LEN, trace_feature_names

FORMAT = "probsched-pretrained-1"
SHIPPED = "cpu_znver3"
"""The shipped set's name: measured on an AMD EPYC (Zen 3, AVX2) with 2 cores."""
TRACED = "cpu_znver3_traces"
"""A second shipped set, with its traces (:func:`load_traces`): 64 records per shape of the
same suite on the same kind of CPU, for the neural cost models' benchmark."""
_ARRAYS = ("rows", "labels", "latency_s", "workload", "searched")


def feature_names(trace_len: int = MAX_LEN) -> tuple[str, ...]:
    """The names of a row's columns, in order: the program row (sum over stores, max over
    stores, the heaviest store, the number of stores), then the trace features."""
    program = tuple(f"{part}_{name}" for part in ("sum", "max", "heavy")
                    for name in F.FEATURE_NAMES) + ("n_stores",)
    return program + trace_feature_names(trace_len)


def feature_version(trace_len: int = MAX_LEN) -> str:
    """A short hash of :func:`feature_names`: two sets' rows mean the same iff it agrees.
    (It changes with any feature, buffer slot, instruction kind or trace length added.)"""
    text = "\n".join(feature_names(trace_len))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PretrainedSet:
    """A pretrained set in memory (the module docstring says what each part is)."""

    rows: np.ndarray
    labels: np.ndarray
    latency_s: np.ndarray
    workload: np.ndarray
    searched: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.rows)
        for name in _ARRAYS[1:]:
            if len(getattr(self, name)) != n:
                raise DatasetError(f"pretrained set: {n} rows but {len(getattr(self, name))} "
                                   f"{name}")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def workloads(self) -> list[dict[str, Any]]:
        return list(self.meta.get("workloads", []))

    def ops(self) -> np.ndarray:
        """The op of each row's workload (e.g. ``"GMM"``)."""
        names = np.array([w.get("op", w.get("name", "?")) for w in self.workloads] or ["?"])
        return names[self.workload]

    def select(self, keep: np.ndarray) -> PretrainedSet:
        """The rows where ``keep`` (a boolean mask) holds; the sidecar as it was."""
        keep = np.asarray(keep, dtype=bool)
        return PretrainedSet(self.rows[keep], self.labels[keep], self.latency_s[keep],
                             self.workload[keep], self.searched[keep], self.meta)

    def without(self, *, ops: tuple[str, ...] = (), hashes: tuple[str, ...] = ()
                ) -> PretrainedSet:
        """The rows of every workload but those of ``ops`` and ``hashes`` (held-out tests)."""
        drop = np.array([w.get("op") in ops or w.get("structural_hash") in hashes
                         for w in self.workloads] or [False])
        return self.select(~drop[self.workload])


def save(path: str | os.PathLike[str], data: PretrainedSet) -> tuple[Path, Path]:
    """Write ``data`` as ``PATH.npz`` and ``PATH.json`` (``path`` with or without the
    ``.npz``); the two paths."""
    npz, sidecar = _paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, rows=data.rows.astype(np.float32),
                        labels=data.labels.astype(np.float32),
                        latency_s=data.latency_s.astype(np.float64),
                        workload=data.workload.astype(np.int32),
                        searched=data.searched.astype(bool))
    meta = {"format": FORMAT, "feature_version": feature_version(), **data.meta,
            "feature_names": list(feature_names())}
    sidecar.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return npz, sidecar


def load(path: str | os.PathLike[str]) -> PretrainedSet:
    """Read a set written by :func:`save`; a :class:`DatasetError` when a file is missing
    or damaged, or the set's feature layout is not this probsched's."""
    npz, sidecar = _paths(path)
    for p in (npz, sidecar):
        if not p.is_file():
            raise DatasetError(f"{p}: no such file (a pretrained set is NAME.npz and "
                               "NAME.json, as `probsched dataset` writes them)")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{sidecar}: not a pretrained set's sidecar ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(f"{sidecar}: not a pretrained set's sidecar (format "
                           f"{meta.get('format') if isinstance(meta, dict) else None!r}, "
                           f"expected {FORMAT!r})")
    version, names = meta.get("feature_version"), list(meta.get("feature_names") or [])
    if version != feature_version() and version != _version_of(names):
        check_version(version, str(sidecar))  # the sidecar disagrees with itself
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {name: z[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DatasetError(f"{npz}: not a pretrained set's arrays ({exc})") from None
    width = len(names)
    if arrays["rows"].ndim != 2 or arrays["rows"].shape[1] != width:
        raise DatasetError(f"{npz}: rows of shape {arrays['rows'].shape}, but the sidecar "
                           f"names {width} features")
    if version != feature_version():
        arrays["rows"] = _aligned(arrays["rows"], names, version, str(sidecar))
        meta["feature_version"] = feature_version()
    if len(arrays["workload"]) and (arrays["workload"].min() < 0 or
                                    arrays["workload"].max() >= len(meta.get("workloads", []))):
        raise DatasetError(f"{npz}: a row's workload index is not in the sidecar's workloads")
    meta.pop("feature_names", None)  # the version stands for them
    return PretrainedSet(**arrays, meta=meta)


def _version_of(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _aligned(rows: np.ndarray, names: list[str], version: object, where: str) -> np.ndarray:
    """A set's rows in this probsched's layout, when the only difference is instruction
    kinds added since the set was made: their columns are zero in it (none of its traces
    used them). Any other difference is refused (:func:`check_version`'s error)."""
    theirs = {n.removeprefix("count_") for n in names if n.startswith("count_")}
    added = set(KINDS) - theirs
    index = {n: k for k, n in enumerate(names)}
    ours = feature_names()
    if set(names) - set(ours) or not all(n in index or _kind_of(n) in added for n in ours):
        check_version(version, where)
    zeros = np.zeros(len(rows), dtype=rows.dtype)
    return np.stack([rows[:, index[n]] if n in index else zeros for n in ours], axis=1)


def _kind_of(name: str) -> str | None:
    """The instruction kind a trace-feature column counts or one-hots (else None)."""
    if name.startswith("count_"):
        return name.removeprefix("count_")
    head, _, kind = name.partition("_")
    return kind if head[:1] == "p" and head[1:].isdigit() and kind in KINDS else None


def check_version(version: object, where: str) -> None:
    """Refuse rows of another feature layout (``where`` names them in the message)."""
    ours = feature_version()
    if version != ours:
        raise DatasetError(
            f"{where}: feature version {version!r}, but this probsched's features are "
            f"version {ours!r}: the set's columns mean other things; make it again with "
            "`probsched dataset` (its database is kept: only the export runs again)")


def shipped_path(name: str = SHIPPED) -> Path:
    """Where the shipped set ``name``'s ``.npz`` is (inside the installed package)."""
    return Path(str(resources.files("probsched.search").joinpath("data", name + ".npz")))


def traces_path(path: str | os.PathLike[str]) -> Path:
    """Where the set at ``path`` keeps its traces."""
    npz, _ = _paths(path)
    return npz.with_name(npz.name.removesuffix(".npz") + ".traces.jsonl.gz")


def save_traces(path: str | os.PathLike[str], traces: Sequence[Trace]) -> Path:
    """Write the traces of the set at ``path``'s rows (in row order); the file's path."""
    out = traces_path(path)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        for t in traces:
            f.write(t.to_json().replace("\n", " ") + "\n")
    return out


def load_traces(path: str | os.PathLike[str], data: PretrainedSet) -> list[Trace] | None:
    """The traces of the set at ``path`` (``data``, as loaded), or None when it has none; a
    :class:`DatasetError` when they are damaged or not one per row."""
    src = traces_path(path)
    if not src.is_file():
        return None
    try:
        with gzip.open(src, "rt", encoding="utf-8") as f:
            traces = [Trace.from_json(line) for line in f if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError, ProbschedError) as exc:
        raise DatasetError(f"{src}: not a pretrained set's traces ({exc})") from None
    if len(traces) != len(data):
        raise DatasetError(f"{src}: {len(traces)} traces for {len(data)} rows")
    return traces


def resolve(pretrained: bool | str | os.PathLike[str] | PretrainedSet | None
            ) -> PretrainedSet | None:
    """``True``: the shipped set; a path: that set; a set: itself; None or False: none."""
    if pretrained is None or pretrained is False:
        return None
    if isinstance(pretrained, PretrainedSet):
        return pretrained
    if pretrained is True:
        return load(shipped_path())
    if isinstance(pretrained, str | os.PathLike):
        return load(pretrained)
    raise DatasetError(f"pretrained: expected True, a path or a PretrainedSet, got "
                       f"{type(pretrained).__name__}")


def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


__all__ = ["FORMAT", "PretrainedSet", "check_version", "feature_names", "feature_version",
           "load", "load_traces", "resolve", "save", "save_traces", "shipped_path", "traces_path"]
