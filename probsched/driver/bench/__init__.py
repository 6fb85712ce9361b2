"""Benchmarks (``probsched bench``): each suite measures side by side in one run and reports
ratios, never a lone absolute time.

A suite is a function ``(trials: int | None, progress) -> dict`` registered with
:func:`suite`; the dict has ``rows`` (one per measured thing, plain JSON values) and may have
``summary``. :func:`markdown` renders it for docs/benchmarks.md.
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable

from ...errors import ProbschedError

SUITES: dict[str, Callable] = {}


def suite(name: str):
    def register(fn):
        SUITES[name] = fn
        return fn

    return register


def run_suite(name: str, trials: int | None = None, progress=None, **options) -> dict:
    """Run suite ``name``; ``options`` go to a suite that takes them (``transfer``'s
    ``source``, ``dest`` and ``data``), and are refused by the others."""
    from ...target import host
    from . import (  # noqa: F401  (each registers its suite)
        annealing,  # noqa: F401
        costmodel,  # noqa: F401
        cuda,  # noqa: F401
        cuda_ops,  # noqa: F401
        dask,  # noqa: F401
        handwritten,
        lang,  # noqa: F401
        latency,  # noqa: F401
        models,  # noqa: F401
        naive,
        ops,  # noqa: F401
        pretrained_start,  # noqa: F401
        replay,  # noqa: F401
        report,  # noqa: F401
        search,  # noqa: F401
        search_bars,  # noqa: F401
        transfer,  # noqa: F401
    )

    if name not in SUITES:
        raise ProbschedError(f"unknown bench suite {name!r}; known: {', '.join(sorted(SUITES))}")
    import inspect

    takes = set(inspect.signature(SUITES[name]).parameters) - {"trials", "progress"}
    if set(options) - takes:
        raise ProbschedError(f"bench suite {name!r} takes no option "
                             f"{', '.join(sorted(set(options) - takes))}")
    result = SUITES[name](trials, progress or (lambda msg: None), **options)
    return {  # a suite may name its own machine and target (the GPU's)
        "suite": name,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {host().describe()}",
        "target": host().key,
        **result,
    }


def markdown(result: dict) -> str:
    """The rows as a Markdown table (every column any row has, in order of first
    appearance; "-" where a row has none), then the summary as a list."""
    rows = result.get("rows", [])
    lines = [f"Suite `{result['suite']}`, {result['date']}, {result['machine']}", ""]
    if rows:
        cols = list(dict.fromkeys(c for r in rows for c in r))
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for r in rows:
            lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    for key, value in result.get("summary", {}).items():
        lines.append(f"- {key}: {_cell(value)}")
    return "\n".join(lines)


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
