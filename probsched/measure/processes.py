"""Starting our worker processes so that they need nothing of the caller.

multiprocessing's ``spawn`` and ``forkserver`` children import the caller's ``__main__``
before they run anything: a user's script without ``if __name__ == "__main__":`` would then
run again in every worker (and tune in there, which multiprocessing refuses), and a script
read from standard input (``python - < script.py``) cannot be imported at all. Our workers
run module-level functions of probsched only, so the processes started here leave the main
module out of what the child prepares. A process may also be started without some
environment variables (the numpy baseline drops the OpenBLAS overrides some machines set).

Children start with SIGINT ignored (an ignored signal stays ignored across exec, and the
forkserver passes it on to what it forks): Ctrl-C in a terminal reaches the whole process
group, and only the parent should handle it (it stops its workers itself), so no child prints
a ``KeyboardInterrupt`` traceback, even while it is still starting up.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import context, popen_forkserver, popen_spawn_posix, spawn
from typing import Any

_LOCK = threading.Lock()
_MAIN_KEYS = ("init_main_from_name", "init_main_from_path")


@contextmanager
def _launching(drop_env: Sequence[str] = ()) -> Iterator[None]:
    """While a child is launched: its preparation data without the main module, and the
    environment it inherits without ``drop_env``."""
    original = spawn.get_preparation_data

    def without_main(name: str) -> dict[str, Any]:
        data = original(name)
        for key in _MAIN_KEYS:
            data.pop(key, None)
        return data

    with _LOCK:
        saved = {k: os.environ.pop(k) for k in drop_env if k in os.environ}
        spawn.get_preparation_data = without_main
        # Ctrl-C is blocked, not ignored, in the launching thread while the child starts:
        # the child inherits the mask, so a Ctrl-C to the group cannot kill it half-started
        # (it ignores SIGINT itself once running), and the tuner still gets one that comes
        # meanwhile (another thread takes it, or this one when the mask is restored); ignored,
        # it was lost and the tune went on
        main_thread = threading.current_thread() is threading.main_thread()
        mask = (signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if main_thread
                else None)
        try:
            yield
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            spawn.get_preparation_data = original
            os.environ.update(saved)


class _ForkServerPopen(popen_forkserver.Popen):
    def _launch(self, process_obj: Any) -> None:
        with _launching():
            super()._launch(process_obj)  # type: ignore[misc]  # not in typeshed


class _SpawnPopen(popen_spawn_posix.Popen):
    def _launch(self, process_obj: Any) -> None:
        with _launching(getattr(process_obj, "drop_env", ())):
            super()._launch(process_obj)  # type: ignore[misc]  # not in typeshed


class ForkServerProcess(context.ForkServerProcess):
    """A forkserver child that does not import the caller's ``__main__``."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 (multiprocessing's name)
        return _ForkServerPopen(process_obj)


class SpawnProcess(context.SpawnProcess):
    """A fresh interpreter that does not import the caller's ``__main__`` and starts without
    the environment variables in ``drop_env``."""

    drop_env: tuple[str, ...] = ()

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 (multiprocessing's name)
        return _SpawnPopen(process_obj)
