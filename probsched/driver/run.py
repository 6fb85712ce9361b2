"""``probsched run``: sample (or replay) one schedule of a .sched file, build it, check it against
the reference and time it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..ir.reference import check_memory
from ..lang.errors import SchedError, located
from ..lang.loader import load
from ..lang.module import Module
from ..measure.runner import CHECK_COPIES
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


def workload_to_measure(mod: Module, name: str | None = None, params: Sequence[str] = ()
                        ) -> Workload:
    """Workload ``name`` of ``mod`` with ``params`` (``NAME=VALUE``), refused (at its
    definition) when measuring it needs more memory than is available."""
    wl = mod.workload(name, **parse_params(params))
    try:
        # the runner's own estimate, made here so that the error comes before any work
        check_memory(wl, CHECK_COPIES, "checking its candidates")
    except ProbschedError as exc:
        wdef = mod.workload_def(wl.name)
        raise located(SchedError, f"{exc.message}: give it smaller parameters (--param)",
                      wdef.loc, mod.ast.source) from None
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
