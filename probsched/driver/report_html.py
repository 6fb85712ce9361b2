"""The report's HTML: one page, styles and images inline, every text escaped.

Each workload's part is a ``<section class="workload">`` holding sections of the classes
``summary``, ``curve``, ``spread``, ``failures``, ``best-trace``, ``loop-nest`` and
``definition``; the page ends with ``target`` and ``versions`` (what the tests look for).
A model's tasks (:mod:`.report_models`) are grouped in a ``<section class="model">``: its task
table (weight, trials, best, share of the end-to-end estimate), then the tasks' parts.
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .notes import versions

if TYPE_CHECKING:
    from .report import Section
    from .report_models import ModelGroup

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
nav li { margin: 0.1em 0; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _img(png: bytes | None, alt: str, why: str | None) -> str:
    if png is None:
        return f'<p class="note">No plot: {_e(why or "nothing to plot")}.</p>'
    data = base64.b64encode(png).decode()
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table>{f'<tr>{cells}</tr>' if head else ''}{body}</table>"


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _summary(s: Section) -> str:
    trials = len(s.gflops)
    failed = sum(f.count for f in s.failures)
    best = s.best
    rows: list[tuple[str, str]] = [
        ("trials", f"{trials} ({failed} failed; {s.retimed} timings again of the fastest)"),
        ("best", "no correct candidate" if best is None or s.best_gflops is None else
         f"{best.latency_s * 1e3:.4f} ms, {s.best_gflops:.2f} GFLOP/s (record {best.id})"),
    ]
    for label, gflops in s.lines:
        share = "" if s.best_gflops is None else f"; best is {s.best_gflops / gflops:.2f}x"
        rows.append((label, f"{gflops:.2f} GFLOP/s{share}"))
    if not s.lines:
        rows.append(("baselines", "not noted (the tuning run timed no numpy or peak)"))
    return _table((), rows)


def _workload(s: Section, curve: bytes | None, spread: bytes | None, why: str | None) -> str:
    failures = (_table(("reason", "candidates", "most common message"),
                       [(f.kind, f.count, f.example) for f in s.failures])
                if s.failures else "<p>No candidate failed.</p>")
    trace = s.best_trace_text()
    nest, caption = s.loop_nest()
    spread_text = ""
    if s.points:
        values = sorted(g for _, g in s.points)
        q = [values[int(p * (len(values) - 1))] for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
        spread_text = _table(("min", "25 %", "median", "75 %", "max"),
                             [[f"{v:.2f}" for v in q]])
    return "\n".join([
        f'<section class="workload" id="{_e(s.anchor)}">',
        f"<h2>{_e(s.title)} on {_e(s.target)}</h2>",
        f'<section class="summary"><h3>Summary</h3>{_summary(s)}</section>',
        '<section class="curve"><h3>Tuning curve</h3>'
        f"{_img(curve, 'tuning curve of ' + s.title, why)}</section>",
        '<section class="spread"><h3>Spread of measured candidates</h3>'
        f"{_img(spread, 'spread of ' + s.title, why)}"
        f"<p>GFLOP/s of the {len(s.points)} correct candidates ({sum(s.loaded)} of the "
        f"trials timed under load from other processes):</p>"
        f"{spread_text}</section>",
        f'<section class="failures"><h3>Failures by reason</h3>{failures}</section>',
        '<section class="best-trace"><h3>Best trace</h3>'
        + (f"<pre>{_e(trace)}</pre>" if trace else "<p>No correct candidate.</p>")
        + "</section>",
        f'<section class="loop-nest"><h3>Loop nest of the best</h3>'
        f'<p class="note">{_e(caption)}</p>'
        + (f"<pre>{_e(nest)}</pre>" if nest else "") + "</section>",
        '<section class="definition"><h3>Workload</h3>'
        f"<pre>{_e(s.workload.text)}</pre></section>",
        "</section>",
    ])


def _targets(found: Sequence[Section]) -> str:
    rows = {}
    for s in found:
        note = s.note or {}
        if s.target not in rows or note:
            rows[s.target] = (s.target, note.get("target_description", "-"),
                              note.get("cpu_model") or "-", note.get("cluster") or "this host")
    return _table(("target (records' key)", "description", "CPU", "measured on"),
                  list(rows.values()))


def _versions(found: Sequence[Section]) -> str:
    runs: dict[str, dict] = {}
    for s in found:
        if s.note and s.note.get("versions"):
            runs[s.title] = s.note["versions"]
    names = list(dict.fromkeys([*versions(), *(k for v in runs.values() for k in v)]))
    head = ("", "this report", *(f"tuning of {t}" for t in runs))
    rows = [(n, versions().get(n, "-"), *(v.get(n, "-") for v in runs.values()))
            for n in names]
    return _table(head, rows)


def _model(m: ModelGroup, parts: str) -> str:
    """A model's part: its task table, then its tasks' parts."""
    rows = "".join(
        f"<tr><td>{t.index}</td><td>"
        + (f'<a href="#{_e(t.section.anchor)}">{_e(t.name)}</a>' if t.section else _e(t.name))
        + f"</td><td>{t.weight}</td><td>{t.trials}</td>"
        f"<td>{_fmt(t.best_s * 1e3 if t.gflops else None, digits=4)}</td>"
        f"<td>{_fmt(t.gflops)}</td><td>{'-' if t.share != t.share else f'{t.share:.1%}'}"
        "</td></tr>" for t in m.tasks)
    head = "".join(f"<th>{h}</th>" for h in ("ID", "task", "weight", "trials", "best ms",
                                              "GFLOP/s", "share"))
    total = m.end_to_end_s
    layout = f" ({_e(m.layout)})" if m.layout else ""
    return "\n".join([
        f'<section class="model" id="{_e(m.anchor)}">',
        f"<h2>Model {_e(m.name)}{layout} on {_e(m.target)}</h2>",
        f'<section class="tasks"><h3>Tasks</h3><table><tr>{head}</tr>{rows}</table>'
        f"<p>End-to-end estimate (sum of weight x best latency): "
        f"{_fmt(total * 1e3 if total < float('inf') else None, ' ms', 3)}; tasks chosen by "
        f"the {_e(m.strategy)} scheduler.</p></section>", parts, "</section>"])


def page(db_path: str, found: Sequence[Section], curves: Sequence[bytes | None],
         spreads: Sequence[bytes | None], why: str | None,
         models: Sequence[ModelGroup] = ()) -> str:
    """The whole page: a contents list, each model's part (its tasks' parts inside), one
    part per other section, the targets and versions."""
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")

    def entry(s: Section) -> str:
        return (f'<li><a href="#{_e(s.anchor)}">{_e(s.title)}</a> on {_e(s.target)}: '
                f"{len(s.gflops)} trials, best {_fmt(s.best_gflops, ' GFLOP/s')}</li>")

    html_of = {s.anchor: _workload(s, c, p, why)
               for s, c, p in zip(found, curves, spreads, strict=True)}
    toc: list[str] = []
    parts: list[str] = []
    placed: set[str] = set()
    for m in models:
        mine = [t.section for t in m.tasks if t.section and t.section.anchor not in placed]
        placed.update(s.anchor for s in mine)
        toc.append(f'<li><a href="#{_e(m.anchor)}">model {_e(m.name)}</a> on '
                   f"{_e(m.target)}: {len(m.tasks)} tasks<ul>"
                   + "".join(entry(s) for s in mine) + "</ul></li>")
        parts.append(_model(m, "\n".join(html_of[s.anchor] for s in mine)))
    rest = [s for s in found if s.anchor not in placed]
    toc += [entry(s) for s in rest]
    parts += [html_of[s.anchor] for s in rest]
    toc_html = "".join(toc)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>probsched report: {_e(db_path)}</title><style>{STYLE}</style></head><body>",
        f"<h1>probsched report: {_e(db_path)}</h1>",
        f'<p class="note">Written {_e(when)}; {len(found)} workloads.</p>',
        f"<nav><ul>{toc_html}</ul></nav>",
        *parts,
        f'<section class="target"><h2>Target</h2>{_targets(found)}</section>',
        f'<section class="versions"><h2>Versions</h2>{_versions(found)}</section>',
        "</body></html>",
    ]) + "\n"


__all__ = ["page"]
