"""``ptxas``: PTX to a cubin, and the resource report of ``ptxas -v`` (registers, spills,
shared memory, stack), a static filter before anything is measured. It runs in a subprocess
with a time limit; a PTX it refuses is a :class:`~probsched.errors.CodegenError` with its
message.

>>> r = parse_report('''ptxas info    : Compiling entry function 'gmm' for 'sm_90'
... ptxas info    : Function properties for gmm
...     0 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
... ptxas info    : Used 40 registers, used 1 barriers, 8192 bytes smem, 400 bytes cmem[0]''')
>>> r.registers, r.spill_store_bytes, r.spill_load_bytes, r.static_shared_bytes, r.stack_bytes
(40, 8, 4, 8192, 0)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from ..errors import CodegenError
from ..target import CudaTarget
from .gpu_kernel import PtxasReport

TIMEOUT_S = 120


def available() -> bool:
    """Whether ``ptxas`` is on the PATH."""
    return shutil.which("ptxas") is not None


def _int(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    return int(m.group(1)) if m else 0


def parse_report(text: str) -> PtxasReport:
    """The figures of ``ptxas -v``'s report of one entry (0 for what it does not mention)."""
    return PtxasReport(
        registers=_int(r"Used (\d+) registers", text),
        spill_store_bytes=_int(r"(\d+) bytes spill stores", text),
        spill_load_bytes=_int(r"(\d+) bytes spill loads", text),
        static_shared_bytes=_int(r"(\d+) bytes smem", text),
        stack_bytes=_int(r"(\d+) bytes stack frame", text),
    )


def assemble(ptx: str, target: CudaTarget, entry: str) -> tuple[bytes, PtxasReport]:
    """The cubin of ``ptx`` for ``target`` and ``ptxas -v``'s report of ``entry``."""
    cubin, (report,) = assemble_all(ptx, target, [entry])
    return cubin, report


def assemble_all(ptx: str, target: CudaTarget, entries: list[str]
                 ) -> tuple[bytes, tuple[PtxasReport, ...]]:
    """The cubin of ``ptx`` for ``target`` and ``ptxas -v``'s report of each of
    ``entries``."""
    entry = entries[0]
    exe = shutil.which("ptxas")
    if exe is None:
        raise CodegenError("ptxas is not on the PATH (install the CUDA toolkit's ptxas)")
    with tempfile.TemporaryDirectory(prefix="probsched-ptxas-") as tmp:
        src, out = os.path.join(tmp, "kernel.ptx"), os.path.join(tmp, "kernel.cubin")
        with open(src, "w", encoding="utf-8") as f:
            f.write(ptx)
        try:
            proc = subprocess.run([exe, f"-arch={target.arch}", "-v", "-o", out, src],
                                  capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CodegenError(f"ptxas took more than {TIMEOUT_S} s on kernel {entry}") from None
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise CodegenError(f"ptxas refused kernel {entry}: {log.strip()}")
        with open(out, "rb") as f:
            cubin = f.read()
    return cubin, tuple(parse_report(_entry_part(log, e)) for e in entries)


def _entry_part(log: str, entry: str) -> str:
    """The lines of the log about ``entry`` (the log may cover several functions)."""
    start = log.find(f"Compiling entry function '{entry}'")
    if start < 0:
        return log
    nxt = log.find("Compiling entry function", start + 1)
    return log[start:] if nxt < 0 else log[start:nxt]


def check_resources(report: PtxasReport, threads: int, target: CudaTarget, entry: str,
                    max_local_bytes: int | None = 0) -> None:
    """The static filter before measurement: refuse a kernel whose ``threads`` need more
    registers than a block has (the launch would fail with
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES; registers are given out per warp, 8 at a time per
    thread), or that keeps more than ``max_local_bytes`` per thread in local memory (spill
    stores and the stack frame; None: no limit)."""
    registers = report.registers
    need = -(-registers // 8) * 8 * 32 * -(-threads // 32)
    if need > target.registers_per_block:
        raise CodegenError(f"kernel {entry} uses {registers} registers per thread; {threads} "
                           f"threads need {need} of the {target.registers_per_block} a block "
                           f"has on {target.arch}: use fewer threads or smaller register tiles")
    local = report.spill_store_bytes + report.stack_bytes
    if max_local_bytes is not None and local > max_local_bytes:
        raise CodegenError(
            f"kernel {entry} keeps {local} bytes per thread in local memory "
            f"({report.spill_store_bytes} of spill stores, a {report.stack_bytes}-byte stack "
            f"frame; {registers} registers; the builder's limit is {max_local_bytes}): use "
            "smaller register tiles")
