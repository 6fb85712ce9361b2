"""The report's plots, as PNG bytes: the tuning curve and the spread of measured candidates.

matplotlib is the ``report`` extra (``pip install 'probsched[report]'``); :func:`unavailable`
says why plots cannot be made here. Figures are made with matplotlib's object API and the Agg
canvas (no pyplot, no global state, no display needed).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

CURVE_COLOR = "#1f5fa8"
POINT_COLOR = "#8fb3dc"


def unavailable() -> str | None:
    """Why plots cannot be made here (None: they can)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed: pip install 'probsched[report]'"
    return None


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)  # fixed margins: a layout engine draws twice
    fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.16)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Any) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def curve_png(title: str, curve: Sequence[float], points: Sequence[tuple[int, float]],
              lines: Sequence[tuple[str, float]]) -> bytes:
    """Best GFLOP/s against trials (``curve``: the best so far after each trial, NaN before
    the first correct one), every correct candidate as a dot (``points``: trial, GFLOP/s),
    and horizontal ``lines`` (label, GFLOP/s: numpy, the machine's peak)."""
    fig, ax = _figure(7.0, 3.6)
    xs = range(1, len(curve) + 1)
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, color=POINT_COLOR,
                   label="measured candidates", zorder=1)
    ax.step(xs, curve, where="post", color=CURVE_COLOR, linewidth=2, label="best so far",
            zorder=3)
    styles = ("--", ":", "-.")
    for k, (label, gflops) in enumerate(lines):
        ax.axhline(gflops, linestyle=styles[k % len(styles)], color=f"C{k + 1}",
                   linewidth=1.2, label=f"{label}: {gflops:.1f}", zorder=2)
    finite = [v for v in curve if math.isfinite(v)]
    top = max([*finite, *(g for _, g in lines)], default=1.0)
    if finite and top / max(finite) > 10:  # a far peak would flatten the curve
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, top * 1.1)
    ax.set_xlim(0, max(1, len(curve)) + 1)
    ax.set_xlabel("trials")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def spread_png(title: str, gflops: Sequence[float], lines: Sequence[tuple[str, float]]
               ) -> bytes:
    """A histogram of the correct candidates' GFLOP/s, with the same ``lines``."""
    fig, ax = _figure(7.0, 2.8)
    ax.hist(gflops, bins=min(40, max(5, len(gflops) // 5)), color=POINT_COLOR,
            edgecolor=CURVE_COLOR, linewidth=0.5)
    for k, (label, value) in enumerate(lines):
        if value <= 2 * max(gflops, default=value):  # a far peak would squash the bars
            ax.axvline(value, linestyle="--", color=f"C{k + 1}", label=label)
    ax.set_xlabel("GFLOP/s")
    ax.set_ylabel("candidates")
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


__all__ = ["curve_png", "spread_png", "unavailable"]
