"""``probsched run``: sample (or replay) one schedule of a .sched file, build it, check it against
the reference and time it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..lang.errors import SchedError, located
from ..lang.loader import load
from ..lang.module import Module
from ..schedule import Schedule, Trace


@dataclass(frozen=True)
class RunReport:
    workload: str
    space: str | None
    correct: bool
    max_abs_err: float
    latency_s: float
    flops: int
    trace: Trace
    error: str | None = None

    @property
    def gflops(self) -> float | None:
        if not self.correct or not math.isfinite(self.latency_s) or self.latency_s <= 0:
            return None
        return self.flops / self.latency_s / 1e9

    def to_json(self) -> dict:
        """The CLI contract's object (non-finite numbers become null)."""
        return {
            "workload": self.workload,
            "space": self.space,
            "correct": self.correct,
            "max_abs_err": _finite(self.max_abs_err),
            "latency_ms": _finite(self.latency_s * 1e3),
            "gflops": self.gflops,
            "trace": json.loads(self.trace.to_json()),
        }

    def describe(self) -> str:
        lines = [f"workload {self.workload}, space {self.space or '(none: untransformed)'}"]
        if self.correct:
            lines.append(f"correct (max abs err {self.max_abs_err:.3g}), "
                         f"{self.latency_s * 1e3:.3f} ms, {self.gflops:.2f} GFLOP/s")
        else:
            lines.append(f"NOT correct: {self.error}")
        return "\n".join(lines)


def _finite(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def parse_params(items: Sequence[str]) -> dict[str, int]:
    """``["n=64", "k=32"]`` -> ``{"n": 64, "k": 32}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip().isidentifier():
                raise ValueError
            out[name.strip()] = int(value)
        except ValueError:
            raise SchedError(f"--param {item!r}: expected NAME=INTEGER") from None
    return out


_ITEM_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


def memory_needed(wl: Workload) -> int:
    """Bytes that measuring ``wl`` holds at once, about: each input drawn in float64 and kept
    twice (pristine and working copy), every stage in the reference's float64, each output
    again as reference and kernel buffer."""
    total = 0
    for t in wl.inputs:
        total += math.prod(t.shape) * (8 + 2 * _ITEM_BYTES.get(t.dtype, 8))
    for s in wl.stages:
        total += math.prod(s.shape) * 8
    for s in wl.outputs:
        total += math.prod(s.shape) * 2 * _ITEM_BYTES.get(s.dtype, 8)
    return total


def memory_available() -> int | None:
    """Bytes of memory this machine has available now (None where it cannot tell)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_fits(wl: Workload, available: int | None = None) -> None:
    """Raise a ``ProbschedError`` when measuring ``wl`` needs more memory than is available
    (before a worker tries, and fails with a traceback)."""
    need, have = memory_needed(wl), available if available is not None else memory_available()
    if have is not None and need > have:
        raise ProbschedError(
            f"workload {wl.name} needs about {need / 2**30:.1f} GiB to be measured (its inputs "
            f"twice, its stages in float64, its outputs twice) and this machine has "
            f"{have / 2**30:.1f} GiB available: give it smaller parameters (--param)")


def workload_to_measure(mod: Module, name: str | None = None, params: Sequence[str] = ()
                        ) -> Workload:
    """Workload ``name`` of ``mod`` with ``params`` (``NAME=VALUE``), refused (at its
    definition) when measuring it needs more memory than is available."""
    wl = mod.workload(name, **parse_params(params))
    try:
        check_fits(wl)
    except ProbschedError as exc:
        wdef = mod.workload_def(wl.name)
        raise located(SchedError, exc.message, wdef.loc, mod.ast.source) from None
    return wl


def run_file(path: str, *, workload: str | None = None, space: str | None = None,
             seed: int = 0, trace: str | None = None, params: Sequence[str] = (),
             target=None) -> RunReport:
    from .api import measure

    mod = load(path)
    wl = workload_to_measure(mod, workload, params)
    if trace is not None:
        try:
            recorded = Trace.from_json(Path(trace).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProbschedError(f"cannot read trace {trace}: {exc}") from None
        sch = recorded.replay(wl, seed=seed, target=target)
        space_name = space
    else:
        sp = mod.space(space) if space is not None else mod.space_for(wl.name)
        sch = Schedule(wl, seed=seed, target=target)
        if sp is not None:
            sp.apply(sch)
        space_name = None if sp is None else sp.name
    result = measure(sch)
    return RunReport(wl.name, space_name, bool(result.correct), result.max_abs_err,
                     result.latency_s, wl.flops, sch.trace, result.error)
