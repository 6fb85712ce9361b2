"""Run .sched inputs through probsched in a worker process, each within a time and a memory
limit, so that a runaway input is caught and reported instead of hanging or killing the test
runner (used by tests/test_lang_hostile.py and the slow fuzzing of tests/test_lang_fuzz.py).

The worker (this file run as a script) imports probsched once, then limits its own address
space to what it holds plus ``memory_mb`` (``resource.setrlimit``) and serves requests, one
JSON line each on its standard input:

- ``{"check": PATH}``: ``probsched check PATH`` (the CLI's ``main``, in the worker);
- ``{"text": TEXT, "filename": NAME, "compile": BOOL}``: what ``check`` and ``run`` do before
  measuring, on TEXT as if read from NAME: parse, check, and for each workload its default
  build, the space ``run`` would pick (or the generated one), one application of it (seed 0)
  and, when asked and the program is small, compiling it.

Each answer is one JSON line: the exit code (0 ok, 1 a located error, 2 anything else: an
internal error, whose text then holds the traceback), what was printed, the seconds taken and
the peak memory of the request (MB, where Linux tells). :class:`Sandbox` is the parent's end:
it restarts the worker after a timeout (answer ``"timeout"``: more than the limit of the
worker's CPU time, or six times it of wall time) or a crash (``"crashed"``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Sandbox:
    """A worker process running requests within ``timeout_s`` and ``memory_mb`` each."""

    def __init__(self, memory_mb: int = 1024, timeout_s: float = 10.0):
        self.memory_mb, self.timeout_s = memory_mb, timeout_s
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()
        self.restarts = 0

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
        proc = subprocess.Popen(
            [sys.executable, __file__, str(self.memory_mb)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=REPO, text=True)
        assert proc.stdout is not None and json.loads(proc.stdout.readline()) == "ready"
        return proc

    def run(self, request: dict, timeout_s: float | None = None) -> dict:
        """The worker's answer to ``request``; ``rc`` is "timeout" or "crashed" when it had
        none in time (the worker is then restarted)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        limit = timeout_s or self.timeout_s
        cpu_start = _cpu_seconds(self.proc.pid)
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        # The limit is on the worker's CPU time (the machine is shared: wall time measures the
        # neighbours too), with a wall-clock backstop of WALL_FACTOR times it.
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.25)
            cpu = _cpu_seconds(self.proc.pid) - cpu_start
            if ready or cpu > limit or time.perf_counter() - start > WALL_FACTOR * limit:
                break
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        rc = "timeout" if not ready else "crashed"
        self._stop()
        return {"rc": rc, "out": self._log_tail(), "seconds": time.perf_counter() - start,
                "peak_mb": None}

    def _log_tail(self) -> str:
        self.log.seek(0)
        text = self.log.read()[-4000:].decode(errors="replace")
        self.log.seek(0)
        self.log.truncate()
        return text

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.restarts += 1

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc = None
        self.log.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- the worker


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _front_end(text: str, filename: str, compile_: bool) -> None:
    import probsched as ps
    from probsched.driver.run import workload_to_measure

    mod = ps.parse(text, filename)
    mod.check()
    for name in mod.workload_names:
        wl = workload_to_measure(mod, name)
        sch = ps.Schedule(wl, seed=0)
        mod.space_for(name).apply(sch)
        small = sum(b.size for b in sch.program.buffers) <= 1 << 14
        if compile_ and small and len(sch.program.paths()[0]) <= 24:
            ps.compile(sch)


WALL_FACTOR = 6


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` (Linux; 0 where unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _serve(memory_mb: int) -> None:
    import resource

    import probsched as ps
    from probsched.driver.cli import main

    ps.lang.generated_space()  # parse the rule library before the limit
    vm_kb = _status_kb("VmSize")
    if vm_kb is not None:
        limit = (vm_kb + memory_mb * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        with contextlib.suppress(OSError):  # the peak memory from here on (Linux)
            Path("/proc/self/clear_refs").write_text("5")
        start = time.perf_counter()
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if "check" in request:
                rc = main(["check", request["check"]])
            else:
                try:
                    _front_end(request["text"], request["filename"], request.get("compile"))
                    rc = 0
                except ps.ProbschedError as exc:
                    print(exc if exc.location is not None else f"(unlocated) {exc}")
                    rc = 1
                except BaseException:  # noqa: B036 - everything else is the finding
                    traceback.print_exc()
                    rc = 2
        peak = _status_kb("VmHWM")
        print(json.dumps({"rc": rc, "out": out.getvalue()[-20_000:],
                          "seconds": time.perf_counter() - start,
                          "peak_mb": None if peak is None else peak / 1024}), flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
