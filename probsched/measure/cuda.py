"""The GPU runner: CUDA kernels loaded, checked and timed through the driver API, in a worker.

Needs the ``cuda`` extra (``pip install 'probsched[cuda]'``: NVIDIA's ``cuda-bindings``) and a
device; :func:`unavailable` says why not where either is missing. Everything that touches the
device runs in one worker process (:class:`~.worker.Worker`), so a kernel that faults (an
illegal address leaves the CUDA context unusable) or hangs costs that worker only: the
candidate is recorded as failed and the next one gets a fresh process and context. The
driver calls and the device's description are in :mod:`.cuda_driver`.

Per workload (and input seed) the worker makes the inputs, reference and tolerances once, as
the CPU runner does (:mod:`.runner`), and keeps device buffers for them. Per candidate:

1. load the cubin (or the PTX, through the driver's JIT, with its error log), opt in to the
   dynamic shared memory the kernel asks for; restore the inputs (from pristine copies on the
   device) and fill the outputs with NaN (a memset on the device);
2. one launch, timed, its outputs checked against the reference on the device
   (:mod:`.cuda_check`: a comparison kernel; the host checks, from a copy, only what that
   kernel does not handle and the outputs it rejects, to say what is wrong). Wrong code is
   never timed. Given ``slow_s``, a candidate whose checking launch and one more both take
   longer is recorded with those two (slow losers dominated a tune's time at 4096^3);
3. warm-up launches, then launches timed by CUDA events one by one, until ``min_repeats``
   launches *and* ``min_time_s`` of kernel time (at most ``max_repeats``). With
   ``flush_l2``, a memset over twice the L2's size runs before each timed launch (outside
   the events), so each launch starts from cold caches as in a network.
"""

from __future__ import annotations

import ctypes
import math
import os
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codegen.compile import CompiledArtifact
from ..codegen.gpu_kernel import GpuKernel, KernelLaunch
from ..codegen.runtime import NP_DTYPES
from ..errors import MeasureError
from ..ir.compute import Workload
from . import runner as cpu_runner
from .contention import MachineLock
from .cuda_check import DeviceCheck
from .cuda_driver import (
    CONTEXT_LOST,
    call,
    check,
    device_target,
    error_name,
    raise_error,
    unavailable,
)
from .runner import RunResult, call_prepared
from .worker import Reply, Worker

__all__ = ["CONTEXT_LOST", "CudaRunConfig", "CudaRunner", "device_target", "unavailable"]

STATIC_SHARED_LIMIT = 48 * 1024  # above it a kernel must opt in (CU_FUNC_ATTRIBUTE_...)


@dataclass(frozen=True)
class CudaRunConfig:
    """How a GPU candidate is timed; see the module docstring."""

    timeout_s: float = 20.0
    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 200
    min_time_s: float = 0.02
    flush_l2: bool = False


class CudaRunner:
    """Checks and times :class:`~probsched.codegen.gpu_kernel.GpuKernel` candidates in one
    worker process that owns the CUDA context (see the module docstring); holds the
    machine's measurement lock while it does, as the CPU runner does."""

    def __init__(self, timeout_s: float = 20.0, warmup: int = 2, min_repeats: int = 5,
                 max_repeats: int = 200, min_time_s: float = 0.02, *, flush_l2: bool = False,
                 prepare_timeout_s: float = 300.0):
        if not 1 <= min_repeats <= max_repeats:
            raise ValueError(f"CudaRunner: need 1 <= min_repeats ({min_repeats}) "
                             f"<= max_repeats ({max_repeats})")
        self.config = CudaRunConfig(timeout_s, warmup, min_repeats, max_repeats, min_time_s,
                                    flush_l2)
        self.prepare_timeout_s = prepare_timeout_s
        self.worker = Worker(name="probsched-cuda")
        self.lock = MachineLock()

    def run(self, kernel: GpuKernel | CompiledArtifact, workload: Workload, *, seed: int = 0,
            slow_s: float | None = None) -> RunResult:
        """Check and time ``kernel`` (built from a program of ``workload``). ``slow_s``: a
        candidate whose checking launch and one more both take longer is a loser, recorded
        with those two (at 4096^3 a slow candidate's full repeats took a quarter of a
        second)."""
        if not isinstance(kernel, GpuKernel):
            raise MeasureError("the GPU runner runs CUDA kernels; this is CPU object code "
                               "(probsched.measure.Runner runs it)")
        def unprepared(prep: Reply) -> str:
            why = (prep.error or "").removeprefix("MeasureError: ")
            return f"workload {workload.name} cannot be measured on the GPU: {why}"

        with self.lock:
            reply = call_prepared(self.worker, (workload.structural_hash, seed),
                                  (_measure, kernel, self.config, slow_s),
                                  (_prepare, workload, seed),
                                  self.config.timeout_s, self.prepare_timeout_s, unprepared)
        if not reply.ok:
            if reply.kind == "error" and CONTEXT_LOST in (reply.error or ""):
                self.worker.close()  # the next candidate gets a fresh process and context
                return RunResult.failed("crash", reply.error or CONTEXT_LOST)
            return RunResult.failed(reply.kind or "error", reply.error or "")
        return reply.value

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> CudaRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- the worker side


@dataclass
class _DeviceCase:
    """A workload's device buffers (inputs, a pristine copy of them, outputs) beside the host
    case of the CPU runner (inputs, reference, tolerances, host output buffers)."""

    host: Any  # runner._Case
    inputs: list[int]
    outputs: list[int]
    pristine: list[int]  # the inputs as made, restored from on the device (not the host)
    check: DeviceCheck  # the reference and tolerances on the device, and their comparison


@dataclass
class _Device:
    ctx: Any
    flush: int = 0  # a device buffer of flush_bytes, written to evict the L2
    flush_bytes: int = 0
    start: Any = None  # CUDA events
    end: Any = None


_device: _Device | None = None
_cases: dict[tuple[str, int], _DeviceCase] = {}
# (entry, hash of the code) -> (module, function): the last few loaded, for re-timings; the
# others are unloaded (a tune loads a module per candidate, each holding device memory)
_modules: OrderedDict[tuple[str, int], tuple[Any, Any]] = OrderedDict()
_scratch: dict[int, tuple[int, int]] = {}  # workspace buffers by position: (pointer, bytes)
LOADED_MODULES = 8


def _open() -> _Device:
    global _device
    if _device is None:
        from cuda.bindings import driver

        why = unavailable()
        if why is not None:
            raise MeasureError(f"cannot run CUDA kernels here: {why}")
        dev = check(driver.cuDeviceGet(0), "cuDeviceGet")
        ctx = check(driver.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
        call(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        flags = driver.CUevent_flags.CU_EVENT_DEFAULT
        start = check(driver.cuEventCreate(flags), "cuEventCreate")
        end = check(driver.cuEventCreate(flags), "cuEventCreate")
        l2 = int(check(driver.cuDeviceGetAttribute(
            driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev), "L2 size"))
        flush_bytes = 2 * max(l2, 1 << 20)
        flush = int(check(driver.cuMemAlloc(flush_bytes), "cuMemAlloc"))
        _device = _Device(ctx, flush, flush_bytes, start, end)
    return _device


def _prepare(key: tuple[str, int], workload: Workload, seed: int) -> None:
    from cuda.bindings import driver

    _open()
    # every core for the reference: no CPU kernel is timed here
    cpu_runner.prepare_case(key, workload, seed, blas_threads=os.cpu_count() or 1)
    host = cpu_runner.cached_case(key)
    assert host is not None
    old = _cases.pop(key, None)
    if old is not None:
        for ptr in (*old.inputs, *old.outputs, *old.pristine):
            driver.cuMemFree(ptr)
        old.check.free(driver)
    def alloc(arrays) -> list[int]:
        return [int(check(driver.cuMemAlloc(max(a.nbytes, 4)), "cuMemAlloc")) for a in arrays]

    inputs, outputs, pristine = alloc(host.pristine), alloc(host.outputs), alloc(host.pristine)
    for ptr, a in zip(pristine, host.pristine, strict=True):
        call(driver.cuMemcpyHtoD(ptr, a.ctypes.data, a.nbytes), "copying an input")
    verify = DeviceCheck(driver, host.outputs, host.refs, host.tolerances, host.all_finite,
                         device_target())
    _cases[key] = _DeviceCase(host, inputs, outputs, pristine, verify)


def _measure(key: tuple[str, int], kernel: GpuKernel, cfg: CudaRunConfig,
             slow_s: float | None = None) -> RunResult | None:
    """None when this process has not prepared the workload yet."""
    from cuda.bindings import driver

    case = _cases.get(key)
    if case is None or cpu_runner.cached_case(key) is None:
        return None
    dev = _open()
    _check_signature(kernel, case)
    fns = _functions(kernel)
    # A kernel may have written anywhere in its inputs' memory: restore them (on the device,
    # from the pristine copies: 128 MB at 4096^3 took tens of ms a candidate from the host).
    for ptr, src, a in zip(case.inputs, case.pristine, case.host.pristine, strict=True):
        call(driver.cuMemcpyDtoD(ptr, src, a.nbytes), "restoring an input")
    for ptr, out in zip(case.outputs, case.host.outputs, strict=True):
        _poison_device(driver, ptr, out)
    workspace = _workspace(kernel)
    params = [ctypes.c_void_p(p) for p in (*case.inputs, *case.outputs, *workspace)]
    array = (ctypes.c_void_p * len(params))(*[ctypes.addressof(p) for p in params])

    def launch() -> None:
        for fn, shape in zip(fns, kernel.launches, strict=True):
            _launch(driver, fn, shape, ctypes.addressof(array))

    first_s = _timed_launch(driver, dev, launch, "the checking launch")
    verdict = case.check(driver, case.outputs)  # on the device: 16 bytes back, not the output
    if verdict is not None and verdict[0]:
        err = verdict[1]
    else:  # the host checks (a dtype the device check lacks) or says what went wrong
        for ptr, out in zip(case.outputs, case.host.outputs, strict=True):
            call(driver.cuMemcpyDtoH(out.ctypes.data, ptr, out.nbytes), "copying an output")
        ok, err, msg = cpu_runner.check_case(case.host)
        if not ok:
            return RunResult.failed("wrong", msg, err)

    deadline = time.perf_counter() + 0.8 * cfg.timeout_s
    runs: list[float] = []
    if slow_s is not None and first_s > slow_s:
        # The checking launch (cold) was slow: one warm launch more decides, as on the CPU.
        again = _timed_launch(driver, dev, launch)
        if again > slow_s:  # a loser: two readings, no precise figure needed
            runs = [first_s, again]
            return RunResult(True, statistics.median(runs), min(runs), tuple(runs), err,
                             kernel_s=sum(runs))
    for _ in range(cfg.warmup - 1):  # the checking launch was the first
        launch()
    _sync(driver, "a warm-up launch")
    total = 0.0
    while len(runs) < cfg.max_repeats:
        if len(runs) >= cfg.min_repeats and total >= cfg.min_time_s:
            break
        if runs and time.perf_counter() + 2 * runs[-1] > deadline:
            break
        if cfg.flush_l2:
            call(driver.cuMemsetD8Async(dev.flush, runs.__len__() & 0xFF, dev.flush_bytes, 0),
                  "flushing the L2")
        runs.append(_timed_launch(driver, dev, launch))
        total += runs[-1]
    return RunResult(True, statistics.median(runs), min(runs), tuple(runs), err,
                     kernel_s=total)


def _poison_device(driver, ptr: int, out: np.ndarray) -> None:
    """Fill an output's device buffer with :func:`~.runner.poison`'s value (NaN, the most
    negative integer, False), by a memset on the device."""
    sample = np.empty(1, out.dtype)
    cpu_runner.poison(sample)
    raw = sample.tobytes()
    if len(raw) == 4:
        call(driver.cuMemsetD32(ptr, int.from_bytes(raw, "little"), out.size),
             "clearing an output")
    elif len(set(raw)) == 1:  # one byte repeated (False, 0)
        call(driver.cuMemsetD8(ptr, raw[0], out.nbytes), "clearing an output")
    else:  # 8-byte NaN or minimum: from the host
        cpu_runner.poison(out)
        call(driver.cuMemcpyHtoD(ptr, out.ctypes.data, out.nbytes), "clearing an output")


def _timed_launch(driver, dev: _Device, launch, what: str = "a timed launch") -> float:
    """Seconds of one launch, by CUDA events around it."""
    call(driver.cuEventRecord(dev.start, 0), "cuEventRecord")
    launch()
    call(driver.cuEventRecord(dev.end, 0), "cuEventRecord")
    call(driver.cuEventSynchronize(dev.end), what)
    ms = check(driver.cuEventElapsedTime(dev.start, dev.end), "cuEventElapsedTime")
    return float(ms) / 1e3


def _functions(kernel: GpuKernel):
    """The loaded kernel functions, in launch order (modules cached by their code)."""
    from cuda.bindings import driver

    image = kernel.cubin if kernel.cubin is not None else kernel.ptx.encode() + b"\0"
    key = (kernel.entry, hash(image))
    if key in _modules:
        _modules.move_to_end(key)
        return _modules[key][1]
    module = _load(driver, image, kernel)
    fns = []
    for launch in kernel.launches:
        fn = check(driver.cuModuleGetFunction(module, launch.entry.encode()),
                   f"kernel {launch.entry} is not in its module")
        if launch.dynamic_shared_bytes > STATIC_SHARED_LIMIT:
            attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            call(driver.cuFuncSetAttribute(fn, attr, launch.dynamic_shared_bytes),
                 f"opting in to {launch.dynamic_shared_bytes} bytes of shared memory")
        fns.append(fn)
    _modules[key] = (module, tuple(fns))
    while len(_modules) > LOADED_MODULES:
        old, _ = _modules.popitem(last=False)[1]
        driver.cuModuleUnload(old)  # nothing of it runs: launches were synchronized
    return tuple(fns)


def _workspace(kernel: GpuKernel) -> list[int]:
    """Device buffers for the kernel's global intermediates, kept by size between calls."""
    from cuda.bindings import driver

    out = []
    for k, spec in enumerate(kernel.workspace):
        nbytes = max(4, math.prod(spec.shape) * np.dtype(NP_DTYPES[spec.dtype]).itemsize)
        held = _scratch.get(k)
        if held is None or held[1] < nbytes:
            if held is not None:
                driver.cuMemFree(held[0])
            _scratch[k] = (int(check(driver.cuMemAlloc(nbytes), "cuMemAlloc")), nbytes)
        out.append(_scratch[k][0])
    return out


def _load(driver, image: bytes, kernel: GpuKernel):
    """The loaded module; where the driver refuses it, its reason, which only
    ``cuModuleLoadDataEx`` with an error log buffer gives."""
    err, module = driver.cuModuleLoadData(image)
    if err == driver.CUresult.CUDA_SUCCESS:
        return module
    text = ""
    try:
        size = 1 << 14
        log = (ctypes.c_char * size)()
        opts = [driver.CUjit_option.CU_JIT_ERROR_LOG_BUFFER,
                driver.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
        again, _ = driver.cuModuleLoadDataEx(image, len(opts), opts,
                                             [ctypes.addressof(log), size])
        if again != driver.CUresult.CUDA_SUCCESS:
            text = log.value.decode(errors="replace").strip()
    except Exception:  # the log is a courtesy: the error itself is known
        pass
    raise MeasureError(f"the driver refused kernel {kernel.entry}: {error_name(err)}"
                       + (f": {text[:2000]}" if text else ""))


def _launch(driver, fn, launch: KernelLaunch, params: int) -> None:
    gx, gy, gz = launch.grid
    bx, by, bz = launch.block
    call(driver.cuLaunchKernel(fn, gx, gy, gz, bx, by, bz, launch.dynamic_shared_bytes, 0,
                                params, 0), f"launching {launch.entry}")


def _sync(driver, what: str) -> None:
    (err,) = driver.cuCtxSynchronize()
    if err != driver.CUresult.CUDA_SUCCESS:
        raise_error(driver, err, what)


def _check_signature(kernel: GpuKernel, case: _DeviceCase) -> None:
    sig = kernel.signature
    host = case.host
    want = [(a.shape, np.dtype(a.dtype)) for a in (*host.pristine, *host.outputs)]
    have = [(a.shape, np.dtype(NP_DTYPES[a.dtype])) for a in (*sig.inputs, *sig.outputs)]
    if want != have:
        raise MeasureError(f"kernel {sig.entry} takes {have}, but workload "
                           f"{host.workload.name} has {want}")
    t = kernel.target
    threads = math.prod(kernel.block)
    if threads > t.max_threads_per_block or any(
            b > m for b, m in zip(kernel.block, t.max_block_dims, strict=True)):
        raise MeasureError(f"kernel {sig.entry}: a block of {kernel.block} threads is more "
                           f"than {t.name} allows ({t.max_threads_per_block} in all)")
    if kernel.dynamic_shared_bytes > t.shared_bytes_optin:
        raise MeasureError(f"kernel {sig.entry} asks for {kernel.dynamic_shared_bytes} bytes "
                           f"of shared memory; {t.name} has {t.shared_bytes_optin} per block")
