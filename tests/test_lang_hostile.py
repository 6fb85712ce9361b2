"""Hostile .sched files through ``probsched check``: every one ends in success or a located
error (``FILE:LINE:COL: error: ...``), exit code 0 or 1, never a traceback, within seconds and
a bounded amount of memory.

The small files are ``tests/data/hostile/*.sched``; the big ones (deep nesting, a megabyte
line, 10,000 stages, files too long, chains of uses, a symbolic-link loop, a named pipe) are
made here. Each runs in a worker process limited to 1 GB more than it holds
(tests/sched_sandbox.py). What each prints, less its path, is the golden file
tests/golden/lang_hostile/test_hostile_files.txt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sched_sandbox import Sandbox

DATA = Path(__file__).resolve().parent / "data" / "hostile"
SECONDS = 30  # per file; most take well under a second, 10,000 stages a few seconds
MEMORY_MB = 1024

W = "workload w(n = 8):\n    input A: float32[n]\n    B[i] = A[i] * 2.0\n\n"


def _generated(folder: Path) -> list[Path]:
    """The big hostile files, written into ``folder``."""
    files = {
        "gen_if_250_deep.sched": W + "space s for w:\n" + "".join(
            "    " * (k + 1) + "if True:\n" for k in range(250)) + "    " * 251 + "pass\n",
        "gen_line_1mb.sched": W + "space s for w:\n    x = " + "+".join(["1"] * 400_000) + "\n",
        "gen_stages_10000.sched": "workload w(n = 8):\n    input A: float32[n]\n"
        "    S0[i] = A[i] * 2.0\n" + "".join(f"    S{k}[i] = S{k - 1}[i] + 1.0\n"
                                            for k in range(1, 10_000)),
        "gen_file_2mb.sched": W + ("# " + "x" * 98 + "\n") * 20_000,
        "gen_use_file_2mb.sched": 'use "gen_file_2mb.sched"\n' + W,
        "gen_use_chain_40.sched": 'use "chain/c1.sched"\n' + W,
        "gen_use_symlink_loop.sched": 'use "chain/loop.sched"\n' + W,
        "gen_use_pipe.sched": 'use "chain/pipe.sched"\n' + W,
        "gen_workload_expr_200.sched": "workload w(n = 8):\n    input A: float32[n]\n    B[i] = "
        + " * ".join(["A[i]"] * 200) + "\n",
        "gen_elif_5000.sched": W + "space s for w:\n    x = 3\n    if x == 0:\n        pass\n"
        + "".join(f"    elif x == {k}:\n        pass\n" for k in range(1, 5_000)),
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    chain = folder / "chain"
    chain.mkdir()
    for k in range(1, 40):
        (chain / f"c{k}.sched").write_text(f'use "c{k + 1}.sched"\n')
    (chain / "c40.sched").write_text("def r():\n    pass\n")
    (chain / "loop.sched").symlink_to(chain / "loop.sched")
    if hasattr(os, "mkfifo"):
        os.mkfifo(chain / "pipe.sched")
    return [folder / name for name in files]


def _outcome(path: Path, answer: dict) -> str:
    """``NAME: rc=RC: first line of the output``, the file named FILE, its folder DIR."""
    first = next((line for line in answer["out"].splitlines() if line.strip()), "")
    for long, short in [(path, "FILE"), (path.parent, "DIR"), (DATA.parent.parent.parent, "REPO")]:
        first = first.replace(str(long), short)
    return f"{path.name}: rc={answer['rc']}: {first}"


def test_hostile_files(tmp_path, golden):
    files = sorted(DATA.glob("*.sched")) + _generated(tmp_path)
    problems, outcomes, slowest = [], [], (0.0, "")
    with Sandbox(memory_mb=MEMORY_MB, timeout_s=SECONDS) as sandbox:
        for path in files:
            answer = sandbox.run({"check": str(path)})
            out, rc = answer["out"], answer["rc"]
            outcomes.append(_outcome(path, answer))
            print(f"{answer['seconds']:6.2f} s {answer['peak_mb'] or 0:6.0f} MB  {path.name}")
            slowest = max(slowest, (answer["seconds"], path.name))
            # Located in the file, or in a file it uses (a chain of uses too long).
            located = re.match(r"[^\n]+?\.sched:\d+:\d+: error: ", out)
            if rc not in (0, 1) or "Traceback" in out or (rc == 1 and not located):
                problems.append(f"{path.name}: rc={rc}\n{out[-3000:]}")
            elif answer["peak_mb"] is not None and answer["peak_mb"] > MEMORY_MB:
                problems.append(f"{path.name}: peak memory {answer['peak_mb']:.0f} MB")
    assert not problems, "\n\n".join(problems)
    print(f"slowest: {slowest[1]}, {slowest[0]:.2f} s")
    golden("\n".join(outcomes))


def test_the_sandbox_reports_runaway_inputs():
    """What the sandbox catches: a timeout (the worker is restarted) and memory beyond its
    limit (a MemoryError in the worker: exit 2, reported). The language's own limits keep a
    space to some 50 MB, so the limit here is lower than that."""
    # 0.1 s of the worker's CPU: the file's work (about 0.6 s on a Zen 5, before the
    # language's own loop limit stops it) must outlast the limit on the fastest host seen.
    with Sandbox(memory_mb=16, timeout_s=0.1) as sandbox:
        assert sandbox.run({"check": str(DATA / "annotate_loop.sched")})["rc"] == "timeout"
        assert sandbox.restarts == 1
        small = {"text": W + "space s for w:\n    xs = range(1000)\n", "filename": "m.sched"}
        assert sandbox.run(small, timeout_s=60)["rc"] == 0
        hog = "    ys = [" + ", ".join(["range(100000)"] * 10) + "]\n"
        answer = sandbox.run({"text": W + "space s for w:\n" + hog, "filename": "m.sched"},
                             timeout_s=60)
        assert answer["rc"] == 2 and "MemoryError" in answer["out"]
