"""``probsched report``: one self-contained HTML page of a tuning database (curves, spread,
failures, best trace and loop nest, target, versions), the curves alone as PNGs, the page
without matplotlib, and the page rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from test_tuner import faulty

import probsched as ps
from probsched.driver import cli, report, report_plots
from probsched.measure import Builder
from probsched.search.database import Database
from probsched.testing import faults

SMALL = {"population": 32, "init_min_fresh": 8}
SECTIONS = ("summary", "curve", "spread", "failures", "best-trace", "loop-nest", "definition")
needs_plots = pytest.mark.skipif(report_plots.unavailable() is not None,
                                 reason=report_plots.unavailable() or "")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A database of two workloads: one tuned with numpy and the peak noted, one with
    failures (crashes, hangs, wrong results)."""
    path = tmp_path_factory.mktemp("report") / "runs.db"
    ps.tune(ps.workloads.gmm(b=1, n=32, m=32, k=32), trials=6, db=str(path), progress=False,
            **SMALL)
    with Builder(passes=faults.PASSES) as builder:
        ps.tune(ps.workloads.gmm(b=1, n=16, m=16, k=16), faulty, trials=8, db=str(path),
                progress=False, reference=False, builder=builder, runner_timeout_s=1.0,
                **SMALL)
    return path


@needs_plots
def test_the_page_has_every_section_of_every_workload_and_nothing_outside(tuned, tmp_path):
    out = tmp_path / "report.html"
    pngs = tmp_path / "curves"
    assert cli.main(["report", "--db", str(tuned), "-o", str(out), "--png", str(pngs)]) == 0
    text = out.read_text()
    assert text.count('<section class="workload"') == 2
    for name in SECTIONS:
        assert text.count(f'<section class="{name}">') == 2, name
    assert '<section class="target">' in text and '<section class="versions">' in text
    assert text.count('src="data:image/png;base64,') == 4  # two curves, two spreads
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # self-contained
    assert "numpy (" in text and "FMA peak" in text  # noted by the tuning run
    assert "crash" in text and "timeout" in text and "wrong" in text
    assert "space best for gmm:" in text and "for i" in text  # trace and loop nest
    assert "llvmlite" in text
    curves = sorted(pngs.iterdir())
    assert len(curves) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in curves)


def test_without_matplotlib_the_page_says_so_and_png_is_an_error(tuned, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.setattr(report_plots, "unavailable", lambda: "matplotlib is not installed")
    out = tmp_path / "report.html"
    assert cli.main(["report", "--db", str(tuned), "-o", str(out)]) == 0
    text = out.read_text()
    assert "No plot: matplotlib is not installed" in text and "<img" not in text
    assert text.count('<section class="failures">') == 2
    assert cli.main(["report", "--db", str(tuned), "--png", str(tmp_path / "p")]) == 1
    assert "--png needs plots: matplotlib is not installed" in capsys.readouterr().err


def test_a_database_tuned_without_notes_still_reports(tmp_path):
    from probsched.search.tuner import tune  # the search's own tune keeps no notes

    db = tmp_path / "bare.db"
    tune(ps.workloads.gmm(b=1, n=16, m=16, k=16), trials=4, db=str(db), progress=False,
         reference=False, **SMALL)
    with Database(db, readonly=True) as d:
        (section,) = report.sections(d)
    assert len(section.gflops) == 4 and section.lines == []
    assert section.loop_nest()[0] is None and "not noted" in section.loop_nest()[1]
    assert section.best_trace_text().startswith("space best for gmm:")


def test_errors_name_the_file(tmp_path, capsys):
    assert cli.main(["report", "--db", str(tmp_path / "missing.db")]) == 1
    assert "missing.db" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    Database(empty).close()
    assert cli.main(["report", "--db", str(empty), "-o", str(tmp_path / "r.html")]) == 1
    assert "no records to report" in capsys.readouterr().err


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)


PROBE = """<script>window.addEventListener("load", () => {
  const shown = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  const seen = [...document.querySelectorAll("section")]
    .filter(s => s.getBoundingClientRect().height > 0).map(s => s.className);
  document.body.insertAdjacentHTML("beforeend",
    `<div id="probe">images=${shown} sections=${seen.join(",")}</div>`);
});</script></body>"""


@pytest.mark.slow
@needs_plots
@pytest.mark.skipif(_browser() is None, reason="no headless browser here (apt-get install "
                    "chromium)")
def test_a_real_browser_shows_every_section_and_image(tuned, tmp_path):
    out = tmp_path / "report.html"
    report.write_report(tuned, out)
    probed = tmp_path / "probed.html"
    probed.write_text(out.read_text().replace("</body>", PROBE))
    dom = subprocess.run(
        [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         "--virtual-time-budget=5000", probed.as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    probe = re.search(r'<div id="probe">images=(\d+) sections=([^<]*)</div>', dom)
    assert probe is not None, dom[-2000:]
    assert int(probe.group(1)) == 4
    shown = probe.group(2).split(",")
    for name in (*SECTIONS, "workload", "target", "versions"):
        assert name in shown, name
    assert shown.count("curve") == 2 and shown.count("best-trace") == 2
