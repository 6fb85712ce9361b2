"""The report's models: a model's tasks grouped under it, as the ``tune-model`` table has them.

``net.tune`` (``probsched tune-model``) records each task as a workload of its own and keeps a
note of the model (:func:`probsched.network.tuning.model_note`: its name, the target, and
each task's name, weight and workload hash). From that note and the report's sections (one
per workload and target) a :class:`ModelGroup` has, per task, its weight, its trials, its best
latency (the best record of its workload, as its section shows it) and its share of the
end-to-end estimate (the sum over tasks of weight x best latency).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..network.tuning import MODEL_NOTE

if TYPE_CHECKING:
    from .report import Section


@dataclass(frozen=True)
class TaskLine:
    """One task of a model: its section (None: no records of it yet), weight and share."""

    index: int
    name: str
    weight: int
    flops: int
    section: Section | None
    share: float  # of the end-to-end estimate (nan: not every task has a correct record)

    @property
    def trials(self) -> int:
        return 0 if self.section is None else len(self.section.gflops)

    @property
    def best_s(self) -> float:
        best = None if self.section is None else self.section.best
        return best.latency_s if best is not None and best.ok else math.inf

    @property
    def gflops(self) -> float | None:
        return self.flops / self.best_s / 1e9 if 0 < self.best_s < math.inf else None


@dataclass(frozen=True)
class ModelGroup:
    """A model tuned into the database, on one target, in one layout ("" in a note written
    before layouts): its tasks in the model's order."""

    name: str
    target: str
    strategy: str
    tasks: tuple[TaskLine, ...]
    layout: str = ""

    @property
    def end_to_end_s(self) -> float:
        """The sum of weight x best latency (inf: a task has no correct record)."""
        return sum(t.weight * t.best_s for t in self.tasks)

    @property
    def anchor(self) -> str:
        key = f"{self.name} {self.target}" + (f" {self.layout}" if self.layout else "")
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9_-]", "-", f"model-{self.name}-{digest}")


def model_groups(notes: Mapping[str, dict], found: Sequence[Section]) -> list[ModelGroup]:
    """The models noted in a database (``notes``: ``Database.notes()``), each with its
    tasks' sections among ``found``; models without a record of any task are left out."""
    by_key = {(s.workload.structural_hash, s.target): s for s in found}
    out = []
    for key, note in notes.items():
        if not key.startswith(MODEL_NOTE) or not isinstance(note.get("tasks"), list):
            continue
        target = str(note.get("target", ""))
        sections = [by_key.get((str(t.get("hash")), target)) for t in note["tasks"]]
        if not any(sections):
            continue
        best = [math.inf if s is None or s.best is None or not s.best.ok else s.best.latency_s
                for s in sections]
        weights = [int(t.get("weight", 1)) for t in note["tasks"]]
        total = sum(w * b for w, b in zip(weights, best, strict=True))
        tasks = tuple(
            TaskLine(int(t.get("index", k)), str(t.get("name", "?")), w,
                     int(t.get("flops", 0)), s,
                     w * b / total if math.isfinite(total) and total > 0 else math.nan)
            for k, (t, s, w, b) in enumerate(zip(note["tasks"], sections, weights, best,
                                                 strict=True)))
        out.append(ModelGroup(str(note.get("model", "model")), target,
                              str(note.get("strategy", "-")), tasks,
                              str(note.get("layout", ""))))
    return out


__all__ = ["ModelGroup", "TaskLine", "model_groups"]
