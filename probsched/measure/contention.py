"""Measuring on a shared machine: tuners take turns, and a measurement taken while something
else loaded the machine says so.

**Taking turns.** Every build batch and every candidate's run holds :class:`MachineLock`, an
exclusive ``flock`` on one file for the whole machine (``/tmp/probsched-measure.lock``): two
tuning runs on one machine, sharing a database or not, alternate instead of timing each
other's kernels. The kernel releases the lock of a process that dies.

**Load.** :class:`BusySampler` adds up how long the measuring process's threads waited,
runnable, for a CPU during the timed runs (Linux's schedstat): near zero on a quiet machine
(0.5 ms in 200 ms), most of the window when other processes take the cores. The runner
retakes a measurement whose other load exceeds :data:`LOADED_CORES`,
and a result still taken under load is flagged (``RunResult.contention``): the tuner never
takes it for its best, and the database ranks it after clean ones.

>>> with MachineLock():
...     pass
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

LOCK_PATH = Path(tempfile.gettempdir()) / "probsched-measure.lock"
LOADED_CORES = 0.1
"""Waiting for CPUs beyond this share of the window (summed over our threads) counts as a
loaded measurement."""


class MachineLock:
    """An exclusive lock for the whole machine (re-entrant within one object). ``shared``:
    held beside other shared holders, never beside an exclusive one (the Dask workers' builds
    on one machine run side by side, but never beside a timed run)."""

    def __init__(self, path: Path | None = None, *, shared: bool = False):
        self.path = path or LOCK_PATH
        self.shared = shared
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> MachineLock:
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                os.fchmod(fd, 0o666)  # other users' tuners take turns on it too
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _waited_s() -> float | None:
    """Seconds this process's threads have spent runnable but waiting for a CPU (Linux's
    schedstat run delay, summed over threads; None where it is not available)."""
    total = 0
    try:
        for task in os.scandir("/proc/self/task"):
            with open(os.path.join(task.path, "schedstat"), encoding="ascii") as f:
                total += int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


class BusySampler:
    """How much the measuring process waited for CPUs over a window (other processes had
    them): start it, then :meth:`other_cores`."""

    def __init__(self) -> None:
        self.waited = _waited_s()
        self.wall = time.perf_counter()

    def other_cores(self) -> float:
        """Our threads' total wait for a CPU, per second of the window: 0 on a quiet machine,
        up to the number of our threads when others take every core."""
        waited = _waited_s()
        wall = time.perf_counter() - self.wall
        if waited is None or self.waited is None or wall <= 0:
            return 0.0
        return max(0.0, (waited - self.waited) / wall)
