"""Setup of measurement worker processes.

The forkserver imports this module once (it is in the preload list, see :mod:`.worker`), so
every worker forked from it starts with numpy, llvmlite, codegen and the reference already
imported, the host target initialised and libgomp loaded. Importing it sets
``OPENBLAS_NUM_THREADS=1`` *before* numpy loads OpenBLAS: spinning OpenBLAS threads ruin
timings on small machines (notes/llvmlite.md, pitfall 13).

Only worker processes (and the forkserver) import this module; the parent never does.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import ctypes  # noqa: E402
import signal  # noqa: E402

from threadpoolctl import threadpool_limits  # noqa: E402

from ..codegen import compile as _compile  # noqa: E402,F401  (preloaded for workers)
from ..codegen import runtime  # noqa: E402
from ..ir import reference as _reference  # noqa: E402,F401
from ..target import host  # noqa: E402

host()
runtime.load_openmp()

_PR_SET_PDEATHSIG = 1


def setup_process() -> None:
    """Per-process setup, first thing in every worker: BLAS on one thread (again, in case the
    forkserver was started without this module), Ctrl-C left to the parent, and death when
    the forkserver (our parent) dies, so a hung kernel never outlives its tuner."""
    threadpool_limits(limits=1, user_api="blas")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass
