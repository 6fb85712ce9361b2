"""What a tuning run tells as it goes: the ``probsched`` log (the round table, failures with
their reason, post-optimization; a NullHandler only, the root logger untouched), each round's
summary with its time split into search, build, run and model fit, the JSON-lines events,
``probsched tune --verbose`` / ``--json-lines``, and the progress bar in a notebook."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import probsched as ps
from probsched.measure import Builder
from probsched.search.events import JsonLines
from probsched.search.rounds import PHASES, PhaseClock, table_header
from probsched.testing import faults

REPO = Path(__file__).resolve().parent.parent

# 3 tilings of the rows, each fine, crashing or wrong (probsched.testing.faults): 9 points.
SMALL_SPACE = """
workload gmm(n = 16, m = 16, k = 16):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

space faulty for gmm:
    c = get_block("C")
    i, j, r = get_loops(c)
    io, ii = split(i, sample_perfect_tile(i, n=2, max_innermost_factor=4))
    annotate(io, "inject_fault", sample_categorical([0, 1, 3], [0.4, 0.3, 0.3]))
"""


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def tuned():
    """One run of the faulty space in rounds of 4: its result, its JSON lines and its log."""
    mod = ps.parse(SMALL_SPACE)
    wl, sp = mod.workload(), mod.space("faulty")
    stream = io.StringIO()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("probsched")
    handler, level = Keep(logging.DEBUG), logger.level
    root_handlers = list(logging.getLogger().handlers)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with Builder(passes=faults.PASSES) as builder:
            result = ps.tune(wl, sp, trials=20, db=None, progress=False, reference=False,
                             builder=builder, runner_timeout_s=2.0, callbacks=[JsonLines(stream)],
                             batch=4, population=16, init_min_fresh=8)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert logging.getLogger().handlers == root_handlers  # the library configures no root
    return result, [json.loads(line) for line in stream.getvalue().splitlines()], records


def test_the_package_logger_has_only_a_null_handler_and_root_is_left_alone():
    code = ("import logging, probsched; lg = logging.getLogger('probsched'); "
            "print([type(h).__name__ for h in lg.handlers], logging.getLogger().handlers, "
            "lg.level)")
    out = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["['NullHandler']", "[]", "0"], out.stderr


def test_each_round_is_summarised_with_its_time_split_by_phase(tuned):
    result, _, _ = tuned
    assert result.trials == 9  # the space, seen whole, before the budget of 20
    rounds = result.rounds
    assert len(rounds) >= 3 and [r.round for r in rounds] == list(range(1, len(rounds) + 1))
    assert sum(r.candidates for r in rounds) == result.trials == rounds[-1].trials
    assert sum(r.failures for r in rounds) == result.failures == 6  # 3 crash, 3 wrong
    kinds: dict[str, int] = {}
    for r in rounds:
        for kind, n in r.failure_kinds:
            kinds[kind] = kinds.get(kind, 0) + n
    assert kinds == {"crash": 3, "wrong": 3}
    for r in rounds:
        assert [p for p, _ in r.seconds] == list(PHASES)
        assert all(v >= 0 for _, v in r.seconds)
        assert sum(v for _, v in r.seconds) == pytest.approx(r.wall_s, abs=1e-9)
    assert sum(r.phase("build") for r in rounds) > 0 and sum(r.phase("run") for r in rounds) > 0
    assert sum(r.phase("search") for r in rounds) > 0
    assert result.rounds[-1].best_gflops == pytest.approx(result.best_gflops)
    assert dict(result.phases).keys() == set(PHASES)
    phases = dict(result.phases)
    assert result.search_s == pytest.approx(phases["search"] + phases["fit"] + phases["other"])
    assert {r.strategy for r in rounds} <= {"evolution", "post-opt"}


def test_the_log_has_the_round_table_failures_and_their_reasons(tuned):
    result, _, records = tuned
    assert {r.name for r in records} == {"probsched.tune"}
    info = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert info[0].startswith("tuning gmm (8192 flops) for 20 trials in rounds of 4")
    assert info.count(table_header()) == 1
    rows = [m for m in info if m.split()[:1] and m.split()[0].isdigit()]
    assert [int(m.split()[0]) for m in rows] == [r.round for r in result.rounds]
    assert info[-len(result.summary().splitlines()):] == result.summary().splitlines()
    debug = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert sum("failed (crash)" in m for m in debug) == 3
    assert sum("failed (wrong)" in m for m in debug) == 3
    assert any(m.startswith("evolution: population") for m in debug)
    retimed = sum(r.retimed for r in result.rounds)  # none if every timing was under load
    assert sum("timed again" in m for m in debug) == retimed


def test_json_lines_stream_every_event(tuned):
    result, events, _ = tuned
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("measurement") == result.trials
    assert kinds.count("round") == len(result.rounds)
    assert kinds.count("retime") == sum(r.retimed for r in result.rounds)
    start = events[0]
    assert start["workload"] == "gmm" and start["trials"] == 20 and start["resumed"] == 0
    trials = [e for e in events if e["event"] == "measurement"]
    assert [e["trial"] for e in trials] == list(range(1, result.trials + 1))
    assert {e["error_kind"] for e in trials if not e["correct"]} == {"crash", "wrong"}
    assert all(e["latency_ms"] > 0 and e["gflops"] > 0 for e in trials if e["correct"])
    rounds = [e for e in events if e["event"] == "round"]
    assert [r["round"] for r in rounds] == [r.round for r in result.rounds]
    assert set(rounds[0]["seconds"]) == set(PHASES)
    done = events[-1]
    assert done["trials"] == result.trials and done["failures"] == result.failures
    assert done["best_gflops"] == pytest.approx(result.best_gflops)
    assert ps.Trace.from_json(json.dumps(done["best_trace"])) == result.best_trace


def test_a_phase_clock_splits_wall_time():
    clock = PhaseClock()
    clock.lap()
    with clock("build"):
        pass
    seconds, wall = clock.lap()
    assert [p for p, _ in seconds] == list(PHASES)
    assert sum(v for _, v in seconds) == pytest.approx(wall)
    with pytest.raises(ValueError, match="unknown phase"):
        with clock("lunch"):
            pass


def test_cli_tune_verbose_prints_the_round_table_and_json_lines_stream(tmp_path):
    sched = tmp_path / "small.sched"
    sched.write_text(SMALL_SPACE.replace(', "inject_fault", sample_categorical([0, 1, 3], '
                                         '[0.4, 0.3, 0.3])', ', "note", 0'))
    out = subprocess.run(
        [sys.executable, "-m", "probsched", "tune", str(sched), "--trials", "3", "--db",
         str(tmp_path / "runs.db"), "--verbose", "--json-lines"],
        env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "done"
    assert sum(e["event"] == "measurement" for e in events) == 3
    assert table_header() in out.stderr
    lines = [part.strip() for line in out.stderr.splitlines() for part in line.split("\r")]
    rows = [line.split() for line in lines if line.startswith("1  evolution")]
    assert len(rows) == 1 and rows[0][:3] == ["1", "evolution", "3"] and len(rows[0]) == 11
    assert out.stderr.count("tuned gmm: 3 new trials") == 1  # the summary, once
    both = subprocess.run([sys.executable, "-m", "probsched", "tune", str(sched), "--trials",
                           "1", "--json", "--json-lines"], env=env(), capture_output=True,
                          text=True, timeout=120)
    assert both.returncode != 0 and "not allowed with" in both.stderr


NOTEBOOK = textwrap.dedent('''
    """A notebook kernel, as tqdm.auto sees one: ipykernel's shell, IPython's display and
    ipywidgets' progress bar (small fakes recording what the bar shows)."""
    import sys, types

    class Shell:
        pass

    Shell.__name__ = "ZMQInteractiveShell"
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: Shell()
    display_mod = types.ModuleType("IPython.display")
    shown = []
    display_mod.display = shown.append
    ipython.display = display_mod

    class Layout:
        pass

    class Widget:
        def __init__(self, **kw):
            self.layout, self.style = Layout(), Layout()
            self.value, self.bar_style, self.max = 0, "", kw.get("max", 0)
            self.children = kw.get("children", ())

        def close(self):
            pass

    widgets = types.ModuleType("ipywidgets")
    widgets.FloatProgress = widgets.HTML = widgets.HBox = Widget
    sys.modules.update({"IPython": ipython, "IPython.display": display_mod,
                        "ipywidgets": widgets,
                        "ipykernel": types.ModuleType("ipykernel"),
                        "ipykernel.zmqshell": types.ModuleType("ipykernel.zmqshell")})

    import json
    import probsched as ps

    mod = ps.parse(sys.argv[1])
    result = ps.tune(mod.workload(), mod.space("faulty"), trials=10, db=None,
                     reference=False, retimes=0)
    (box,) = shown
    _, bar, text = box.children
    print(json.dumps({"kind": type(box).__name__, "value": bar.value, "max": bar.max,
                      "style": bar.bar_style, "text": text.value, "trials": result.trials}))
''')


def test_the_progress_bar_is_a_widget_in_a_notebook_and_ends_green(tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    space = SMALL_SPACE.replace('sample_categorical([0, 1, 3], [0.4, 0.3, 0.3])', "0")
    out = subprocess.run([sys.executable, str(script), space], env=env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout.splitlines()[-1])
    assert shown["kind"] == "TqdmHBox"  # tqdm.notebook's widget, not text
    assert shown["trials"] == 3  # the space seen whole before the budget of 10
    assert shown["value"] == shown["max"] == 3 and shown["style"] == "success"  # not red
    assert "best" in shown["text"] and "GFLOP/s" in shown["text"]
    assert "trial/s" not in out.stderr  # no text bar on stderr
