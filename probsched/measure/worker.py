"""A worker process that runs one request at a time, isolated from the caller.

A request is a module-level function and its arguments; the worker calls it and sends back the
result. Whatever happens in the child becomes a :class:`Reply`: a result, an exception
(``kind="error"``), a crash (``kind="crash"``, ``"crashed: SIGSEGV"``) or a hang
(``kind="timeout"``, the child is killed). After a crash or timeout, and after
``recycle_after`` requests (llvmlite leaks ~137 KB per optimized module), the process is
replaced by a fresh one; callers just go on.

Processes come from a ``forkserver`` that has preloaded :mod:`.child` (numpy, llvmlite,
codegen, BLAS limited to one thread): a fresh worker costs ~10 ms, and it never inherits the
caller's threads (OpenBLAS, libgomp, tqdm) or its llvmlite state. They need nothing of the
caller's ``__main__`` (:mod:`.processes`): tuning from an unguarded script works. A worker
may instead be a fresh interpreter (``start_method="spawn"``), started without some
environment variables and without :mod:`.child`'s setup (the numpy baseline's).

>>> import operator
>>> with Worker() as w:
...     w.call(operator.add, 2, 3, timeout_s=30).value
5
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.process import BaseProcess
from typing import Any

from ..errors import ProbschedError
from .processes import ForkServerProcess, SpawnProcess

START_METHOD = "forkserver"
PRELOAD = ["probsched.measure.child"]
"""Modules the forkserver imports once, for every worker it forks."""

_context = None


def _get_context():
    global _context
    if _context is None:
        _context = multiprocessing.get_context(START_METHOD)
        # Has no effect when a forkserver already runs (a worker then imports .child itself).
        _context.set_forkserver_preload(PRELOAD)
    return _context


_PROCESSES = {"forkserver": ForkServerProcess, "spawn": SpawnProcess}


@dataclass(frozen=True)
class Reply:
    """The outcome of one request: ``value`` when ``kind`` is None, else ``error``."""

    value: Any = None
    error: str | None = None
    kind: str | None = None  # None | "error" | "crash" | "timeout"

    @property
    def ok(self) -> bool:
        return self.kind is None


class Worker:
    """One child process serving requests over a pipe; restarted when it dies, hangs, or has
    served ``recycle_after`` requests."""

    def __init__(self, *, recycle_after: int | None = None, name: str = "probsched-worker",
                 start_method: str = START_METHOD, drop_env: Sequence[str] = (),
                 setup: bool = True):
        self.recycle_after = recycle_after
        self.name = name
        if start_method not in _PROCESSES:
            raise ValueError(f"Worker: start_method must be one of {sorted(_PROCESSES)}, "
                             f"not {start_method!r}")
        self.start_method, self.drop_env, self.setup = start_method, tuple(drop_env), setup
        self.starts = 0  # processes started so far
        self._proc: BaseProcess | None = None
        self._conn: connection.Connection | None = None  # set together with _proc
        self._served = 0
        self._deadline: float | None = None  # set while a request is in flight
        self._timeout_s = 0.0
        self._early: Reply | None = None  # a reply known at submit time

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the process now (otherwise the first request starts it)."""
        if self._proc is not None:
            return
        ctx = _get_context() if self.start_method == "forkserver" else (
            multiprocessing.get_context(self.start_method))
        parent_end, child_end = ctx.Pipe()
        proc = _PROCESSES[self.start_method](target=_serve, args=(child_end, self.setup),
                                             name=self.name, daemon=True)
        if self.drop_env:
            proc.drop_env = self.drop_env
        proc.start()
        child_end.close()
        self._proc, self._conn, self._served = proc, parent_end, 0
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def busy(self) -> bool:
        return self._deadline is not None

    def close(self) -> None:
        """Stop the process: politely when idle, by SIGKILL when busy or unresponsive."""
        proc, conn, busy = self._proc, self._conn, self.busy
        self._proc = self._conn = None
        self._deadline = None
        self._early = None
        if proc is None:
            return
        if conn is not None:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        proc.join(timeout=0 if busy else 2)
        if proc.is_alive():
            proc.kill()
            proc.join()

    def _started(self) -> tuple[BaseProcess, connection.Connection]:
        """The process and its pipe, which a request in flight has (it started them)."""
        proc, conn = self._proc, self._conn
        assert proc is not None and conn is not None
        return proc, conn

    def _discard(self, kill: bool) -> int | None:
        """Drop the current process (killing it if asked); its exit code."""
        proc, conn = self._started()
        if kill:
            proc.kill()
        proc.join(timeout=5)
        if proc.is_alive():  # closed its pipe but lingers
            proc.kill()
            proc.join()
        conn.close()
        self._proc = self._conn = None
        return proc.exitcode

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ requests

    def submit(self, fn: Callable, *args: Any, timeout_s: float) -> None:
        """Send a request; collect its reply with :meth:`poll` or :meth:`result`."""
        if self.busy:
            raise ProbschedError(f"worker {self.name} is busy")
        self.start()
        _, conn = self._started()
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s
        try:
            conn.send((fn, args))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child is dead: poll() reports how it died
        except Exception as exc:  # could not pickle the request; the pipe is intact
            self._early = Reply(error=f"cannot send the request: {_describe(exc)}",
                                kind="error")

    def waitables(self) -> list:
        """What ``multiprocessing.connection.wait`` should watch for this worker."""
        if not self.busy or self._early is not None:
            return []
        proc, conn = self._started()
        return [conn, proc.sentinel]

    def remaining_s(self) -> float:
        if self._early is not None:
            return 0.0
        deadline = self._deadline  # None when not busy
        return 0.0 if deadline is None else max(0.0, deadline - time.monotonic())

    def poll(self) -> Reply | None:
        """The reply of the request in flight, or None while it may still come."""
        deadline = self._deadline  # None when not busy
        if deadline is None:
            raise ProbschedError(f"worker {self.name} has no request in flight")
        if self._early is not None:
            reply, self._early = self._early, None
            return self._finish(reply)
        proc, conn = self._started()
        if conn.poll():
            try:
                status, value = conn.recv()
            except (EOFError, OSError):
                return self._finish(self._died())
            except Exception as exc:  # a result that does not unpickle here
                return self._finish(Reply(error=f"cannot read the reply: {_describe(exc)}",
                                          kind="error"))
            if status == "ok":
                return self._finish(Reply(value=value))
            return self._finish(Reply(error=value, kind="error"))
        if not proc.is_alive():
            return self._finish(self._died())
        if time.monotonic() >= deadline:
            self._discard(kill=True)
            return self._finish(Reply(error=f"timeout after {self._timeout_s:g} s",
                                      kind="timeout"))
        return None

    def result(self) -> Reply:
        """Wait for the reply of the request in flight (at most until its deadline)."""
        try:
            while True:
                reply = self.poll()
                if reply is not None:
                    return reply
                connection.wait(self.waitables(), timeout=self.remaining_s())
        except BaseException:  # Ctrl-C: don't leave the request running
            self.cancel()
            raise

    def cancel(self) -> None:
        """Abandon the request in flight, if any (its process is killed)."""
        if self.busy:
            self._deadline = None
            self._early = None
            if self._proc is not None:
                self._discard(kill=True)

    def call(self, fn: Callable, *args: Any, timeout_s: float) -> Reply:
        """``fn(*args)`` in the worker; never raises for what happens over there."""
        self.submit(fn, *args, timeout_s=timeout_s)
        return self.result()

    def _died(self) -> Reply:
        return Reply(error=describe_exit(self._discard(kill=False)), kind="crash")

    def _finish(self, reply: Reply) -> Reply:
        self._deadline = None
        if self._proc is not None:
            self._served += 1
            if self.recycle_after and self._served >= self.recycle_after:
                self.close()
        return reply


def wait_any(workers: Sequence[Worker]) -> None:
    """Block until one of the busy ``workers`` may have a reply (or a deadline passes)."""
    busy = [w for w in workers if w.busy]
    if not busy:
        return
    waitables = [x for w in busy for x in w.waitables()]
    timeout = min(w.remaining_s() for w in busy)
    if waitables and timeout > 0:
        connection.wait(waitables, timeout=timeout)


def describe_exit(exitcode: int | None) -> str:
    """``crashed: SIGSEGV`` for a signal, ``exited with code N`` otherwise."""
    if exitcode is None:
        return "crashed: worker stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"crashed: {name}"
    return f"crashed: worker exited with code {exitcode}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ProbschedError):
        return f"{type(exc).__name__}: {exc}"
    tb = traceback.format_exception(exc)
    return "".join(tb[-6:]).rstrip()  # the innermost frames: enough to find the bug


# ---------------------------------------------------------------- the child side


def _serve(conn, setup: bool = True) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if setup:
        from . import child  # a no-op when the forkserver preloaded it

        child.setup_process()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply = ("ok", fn(*args))
        except Exception as exc:
            reply = ("error", _describe(exc))
        try:
            conn.send(reply)
        except (BrokenPipeError, ConnectionResetError):
            return  # the parent is gone: nothing to say to anyone
        except Exception as exc:  # an unpicklable result
            try:
                conn.send(("error", f"cannot send the result: {_describe(exc)}"))
            except OSError:
                return
