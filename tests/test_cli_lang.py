"""`probsched check` and `probsched run` on .sched files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import probsched as ps
from probsched.driver.cli import main

REPO = Path(__file__).resolve().parent.parent
MATMUL = str(REPO / "examples" / "matmul.sched")
SMALL = ["--param", "n=32", "--param", "m=32", "--param", "k=16"]


def test_check_ok(capsys):
    assert main(["check", MATMUL]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("text, where, message", [
    ("space s\n    pass\n", ":1:8: error: missing ':'", "space s"),
    ("workload w(n = 4):\n    input A: float32[n]\n    B[i] = A[i] * 2.0\n"
     "space s for w:\n    split(get_loops(get_block(\"B\"))[0], 2)\n",
     ":5:5: error: split(", "split(get_loops"),
    ("space s:\n    x = y\n", ":2:9: error: name 'y' is not defined", "x = y"),
])
def test_check_errors(tmp_path, capsys, text, where, message):
    path = tmp_path / "bad.sched"
    path.write_text(text)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    first, line, caret = err.splitlines()[:3]
    assert first.startswith(str(path) + where), err
    assert message in line and caret.strip() == "^"
    assert "Traceback" not in err


def test_check_missing_file(capsys):
    assert main(["check", "/nonexistent/x.sched"]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_run_json_and_trace_replay(tmp_path, capsys):
    assert main(["run", MATMUL, "--seed", "1", "--json", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"workload", "space", "correct", "max_abs_err", "latency_ms",
                           "gflops", "trace"}
    assert result["correct"] is True and result["workload"] == "gmm"
    assert result["space"] == "tiled" and result["latency_ms"] > 0
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(result["trace"]))
    assert main(["run", MATMUL, "--trace", str(trace), "--json", *SMALL]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["trace"] == result["trace"] and again["correct"] is True


def test_run_workload_without_space_and_choices(tmp_path, capsys):
    path = tmp_path / "two.sched"
    path.write_text("workload a(n = 8):\n    input X: float32[n]\n    Y[i] = X[i] * 2.0\n"
                    "workload b(n = 8):\n    input X: float32[n]\n    Y[i] = X[i] + 1.0\n")
    assert main(["run", str(path)]) == 1
    assert "2 workloads (a, b); name one" in capsys.readouterr().err
    assert main(["run", str(path), "--workload", "b", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # no space in the file: the generated one (probsched/rules/cpu.sched)
    assert result["space"] == "generated" and result["correct"] is True
    assert result["trace"]["instructions"] != []
    assert main(["run", str(path), "--workload", "b", "--param", "q=1"]) == 1
    assert "no parameter q" in capsys.readouterr().err
    assert main(["run", str(path), "--workload", "b", "--param", "n"]) == 1
    assert "expected NAME=INTEGER" in capsys.readouterr().err


def test_subprocess_run_matmul():
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(
        [sys.executable, "-m", "probsched", "run", "examples/matmul.sched", "--seed", "1",
         "--json", *SMALL],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["correct"] is True and result["gflops"] > 0


def test_bench_lang_suite(capsys):
    assert main(["bench", "--suite", "lang", "--trials", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["suite"] == "lang" and result["summary"]["lines"] >= 50
    assert all(row["median_ms"] > 0 for row in result["rows"])


def test_run_refuses_a_workload_too_big_to_measure(tmp_path, capsys):
    """Before measuring (a worker would fail with a traceback, printed twice), located at the
    workload; the tensor-size limit refuses larger ones where they are defined."""
    path = tmp_path / "big.sched"
    path.write_text("workload w(n = 1048576, m = 1048576):\n    input A: float32[n, m]\n"
                    "    B[i, j] = A[i, j] * 2.0\n")
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr()
    assert out.err.startswith(f"{path}:1:1: error: workload w: checking its candidates needs "
                              "49152.") and "available" in out.err and "--param" in out.err
    assert out.err.count("needs") == 1 and "Traceback" not in out.err + out.out
    assert main(["run", str(path), "--param", "n=2097152"]) == 1
    assert "input A: 2199023255552 elements, more than 2**40" in capsys.readouterr().err


def test_run_refuses_a_workload_bigger_than_memory_at_its_definition(monkeypatch, tmp_path):
    from probsched.driver.run import workload_to_measure
    from probsched.ir import reference

    path = tmp_path / "w.sched"
    path.write_text("# a small workload on a machine with 1 MB\n"
                    "workload w(n = 256):\n    input A: float32[n, n]\n"
                    "    B[i, j] = A[i, j] * 2.0\n")
    mod = ps.load(path)
    assert workload_to_measure(mod).name == "w"
    monkeypatch.setattr(reference, "available_bytes", lambda: 2**20)
    with pytest.raises(ps.ProbschedError, match=r"w.sched:2:1: error: workload w: checking "
                       r"its candidates needs 0\.\d GiB .*--param"):
        workload_to_measure(mod)
