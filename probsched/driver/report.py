"""``probsched report``: a tuning database as one self-contained HTML page.

Per workload and target, a model's tasks grouped under the model (:mod:`.report_models`,
from the note ``net.tune`` keeps): the tuning curve (best GFLOP/s
against trials, with numpy's and the machine's FMA peak as lines where the tuning run noted
them), the spread of the measured candidates, the failures by reason, the best trace as
``.sched`` text and its loop nest, and the target and versions. Images are inline (base64
PNG), so the page is one file to mail or archive. The plots need matplotlib (the ``report``
extra); without it the page says so and has everything else. ``--png DIR`` also writes the
curves alone.

What is read: the records' verdicts (:meth:`Database.verdicts`, no traces: a thousand traces
would take seconds to parse), the best record of each (its trace), and the tuning runs' notes
(:mod:`.notes`: baselines, peak, target, versions, the best loop nest).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProbschedError
from ..lang.trace_printer import format_trace_space
from ..measure.contention import LOADED_CORES
from ..search.database import Database
from ..search.records import Record, WorkloadRow
from . import report_plots
from .notes import note_key


@dataclass(frozen=True)
class Failure:
    """Failed records of one kind: how many, and their most common message."""

    kind: str
    count: int
    example: str


@dataclass(frozen=True)
class Section:
    """What the report shows of one workload on one target."""

    workload: WorkloadRow
    target: str
    gflops: tuple[float | None, ...]  # per new trial: GFLOP/s (None: failed)
    loaded: tuple[bool, ...]  # per new trial: timed while other processes held the CPUs
    retimed: int  # timings again of candidates measured before (not trials)
    failures: tuple[Failure, ...]
    best: Record | None
    note: dict | None

    @property
    def title(self) -> str:
        return f"{self.workload.name} ({self.workload.structural_hash[:8]})"

    @property
    def anchor(self) -> str:
        target = hashlib.sha1(self.target.encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9_-]", "-", f"{self.workload.name}-"
                      f"{self.workload.structural_hash[:8]}-{target}")

    @property
    def curve(self) -> list[float]:
        """The best GFLOP/s so far after each trial (NaN before the first correct one), of
        those timed clean (as the tuner picks its best; all when none was)."""
        out, best = [], math.nan
        clean = not all(self.loaded)
        for g, loaded in zip(self.gflops, self.loaded, strict=True):
            if g is not None and not (clean and loaded) and not g <= best:
                best = g
            out.append(best)
        return out

    @property
    def points(self) -> list[tuple[int, float]]:
        return [(i + 1, g) for i, g in enumerate(self.gflops) if g is not None]

    @property
    def best_gflops(self) -> float | None:
        if self.best is None or not self.best.ok:
            return None
        return self.workload.flops / self.best.latency_s / 1e9

    @property
    def lines(self) -> list[tuple[str, float]]:
        """The baselines as (label, GFLOP/s): numpy, the machine's FMA peak (where noted)."""
        note, out = self.note or {}, []
        if note.get("numpy_s"):
            out.append((f"numpy ({note.get('numpy_kernel')}, {note.get('numpy_threads')} "
                        "threads)", self.workload.flops / note["numpy_s"] / 1e9))
        if note.get("peak_all_cores_gflops"):
            out.append((f"FMA peak, {note.get('peak_cores')} cores",
                        float(note["peak_all_cores_gflops"])))
        return out

    def best_trace_text(self) -> str | None:
        if self.best is None:
            return None
        return format_trace_space(self.best.trace, self.workload.name, "best")

    def loop_nest(self) -> tuple[str | None, str]:
        """The best candidate's loop nest as noted by the tuning run, and a caption."""
        note = self.note or {}
        program = note.get("best_program")
        if program is None:
            return None, ("not noted: the database was tuned without notes (ps.tune and "
                          "probsched tune keep them), and it holds workloads as text only")
        if self.best is not None and note.get("best_decisions") == self.best.decisions:
            return program, f"record {self.best.id}, as the tuning run printed it"
        return program, "the last tuning run's best, which the records now rank otherwise"


def sections(db: Database) -> list[Section]:
    """Every workload and target of ``db``, in the order they were first stored."""
    notes = db.notes()
    out = []
    for wl in db.workloads():
        by_target: dict[str, list[tuple]] = {}
        for row in db.verdicts(wl.structural_hash):
            by_target.setdefault(row[1], []).append(row)
        for target, rows in by_target.items():
            out.append(_section(db, wl, target, rows, notes.get(note_key(
                wl.structural_hash, target))))
    return out


def _section(db: Database, wl: WorkloadRow, target: str, rows: list[tuple],
             note: dict | None) -> Section:
    gflops: list[float | None] = []
    loaded: list[bool] = []
    failed: dict[str, Counter] = {}
    retimed = 0
    for _rid, _t, latency, kind, error, contention, repeat in rows:
        if repeat:
            retimed += 1
            continue
        ok = latency is not None and latency > 0
        gflops.append(wl.flops / latency / 1e9 if ok else None)
        loaded.append(contention > LOADED_CORES)
        if latency is None:
            first = (error or "").strip().splitlines()
            failed.setdefault(kind or "error", Counter())[first[0] if first else ""] += 1
    failures = tuple(sorted((Failure(k, sum(c.values()), c.most_common(1)[0][0])
                             for k, c in failed.items()), key=lambda f: -f.count))
    best = db.best(wl.structural_hash, target=target)
    return Section(wl, target, tuple(gflops), tuple(loaded), retimed, failures,
                   best[0] if best else None, note)


def curve_png(section: Section) -> bytes:
    """The tuning curve of one section as PNG."""
    return report_plots.curve_png(section.title, section.curve,
                                  section.points, section.lines)


def write_report(db_path: str | os.PathLike[str], output: str | os.PathLike[str] = "report.html",
                 *, png_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the report of the database at ``db_path`` to ``output`` (and each curve as a
    PNG into ``png_dir``); the paths written."""
    from .report_html import page

    why = report_plots.unavailable()
    if png_dir is not None and why:
        raise ProbschedError(f"--png needs plots: {why}")
    from .report_models import model_groups

    with Database(db_path, readonly=True) as db:
        found = sections(db)
        models = model_groups(db.notes(), found)
    if not found:
        raise ProbschedError(f"{db_path}: no records to report")
    curves = [None if why else curve_png(s) for s in found]
    spreads = [None if why or not s.points else report_plots.spread_png(
        f"{s.title}: {len(s.points)} correct candidates", [g for _, g in s.points], s.lines)
        for s in found]
    out = Path(output)
    try:
        out.write_text(page(str(db_path), found, curves, spreads, why, models), encoding="utf-8")
    except OSError as exc:
        raise ProbschedError(f"cannot write {out}: {exc.strerror or exc}") from None
    written = [out]
    if png_dir is not None:
        folder = Path(png_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for s, png in zip(found, curves, strict=True):
                assert png is not None  # plots are available (checked above)
                path = folder / f"{s.anchor}.png"
                path.write_bytes(png)
                written.append(path)
        except OSError as exc:
            raise ProbschedError(f"cannot write the curves into {folder}: "
                                 f"{exc.strerror or exc}") from None
    return written


__all__ = ["Failure", "Section", "curve_png", "sections", "write_report"]
