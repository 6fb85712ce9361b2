"""Checking a GPU candidate's outputs on the device: a comparison kernel instead of a copy.

The CPU runner's check (:func:`~.runner.check_case`) reads the whole output against the
reference on the host. For a GPU kernel that meant copying the output back first and then
comparing on the host: at GMM 4096^3 (a 64 MB output, a float64 reference) the comparison
alone took 280 ms a candidate on the device machine's host, four fifths of the time a
candidate spent in the runner. Here the reference and the tolerances stay on the device and
one small kernel (NVVM IR text through llvmlite's NVPTX backend, as every kernel here) counts
the elements outside their tolerance and takes the largest difference, so a check costs a
fraction of a millisecond and 16 bytes back.

It decides what the host's fast path decides, in the same arithmetic: an output passes iff
``|out - ref| <= tol`` for every element (computed in the reference's precision, so NaN
fails), and the worst difference is the largest one. It applies where that fast path does:
floating-point outputs (float32 or float64) of a reference that is finite everywhere. A
failed check is not explained here: the runner copies the output back and lets the host's
full check name what went wrong, which is rare next to the passing candidates.
"""

from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codegen.machine import nvptx_assembly
from ..target.cuda import CudaTarget
from .cuda_driver import call, check

ENTRY = "probsched_check"
THREADS = 256
BLOCKS_PER_SM = 4
_LLVM_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
RESULT_BYTES = 16  # u32 count of failed elements, padding, u64 bits of the worst difference


def supported(out_dtype: np.dtype, ref_dtype: np.dtype) -> bool:
    """Whether the comparison kernel handles this pair (float32 or float64, the reference at
    least as wide as the output)."""
    out_dtype, ref_dtype = np.dtype(out_dtype), np.dtype(ref_dtype)
    return (out_dtype in _LLVM_TYPES and ref_dtype in _LLVM_TYPES
            and ref_dtype.itemsize >= out_dtype.itemsize)


def check_ir(out_dtype: np.dtype, ref_dtype: np.dtype) -> str:
    """NVVM IR text of the comparison kernel ``probsched_check(out, ref, tol, n, result)``:
    each thread strides over the elements, then adds its count of failures to ``result[0]``
    (u32) and takes the max of its worst difference into ``result[1]`` (the bits of a
    non-negative double, which order as unsigned integers)."""
    out_t, ref_t = _LLVM_TYPES[np.dtype(out_dtype)], _LLVM_TYPES[np.dtype(ref_dtype)]
    # the output in the reference's precision, and the worst difference as a double
    widen, ow = (f"%ow = fpext {out_t} %o to {ref_t}", "%ow") if out_t != ref_t else ("", "%o")
    worst_d, wd = (("%wd = fpext float %worst to double", "%wd") if ref_t == "float"
                   else ("", "%worst"))
    sreg = "llvm.nvvm.read.ptx.sreg"
    return f"""\
target triple = "nvptx64-nvidia-cuda"

declare i32 @{sreg}.tid.x()
declare i32 @{sreg}.ctaid.x()
declare i32 @{sreg}.ntid.x()
declare i32 @{sreg}.nctaid.x()
declare {ref_t} @llvm.fabs.{_suffix(ref_t)}({ref_t})

define ptx_kernel void @{ENTRY}(ptr addrspace(1) %out, ptr addrspace(1) %ref,
                                ptr addrspace(1) %tol, i64 %n, ptr addrspace(1) %result) {{
entry:
  %tid = call i32 @{sreg}.tid.x()
  %bid = call i32 @{sreg}.ctaid.x()
  %nt = call i32 @{sreg}.ntid.x()
  %nb = call i32 @{sreg}.nctaid.x()
  %first32 = mul i32 %bid, %nt
  %first32b = add i32 %first32, %tid
  %first = zext i32 %first32b to i64
  %stride32 = mul i32 %nb, %nt
  %stride = zext i32 %stride32 to i64
  br label %head

head:
  %i = phi i64 [ %first, %entry ], [ %next, %body ]
  %fails = phi i32 [ 0, %entry ], [ %fails2, %body ]
  %worst = phi {ref_t} [ 0.0, %entry ], [ %worst2, %body ]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %done

body:
  %po = getelementptr {out_t}, ptr addrspace(1) %out, i64 %i
  %o = load {out_t}, ptr addrspace(1) %po, align {_align(out_t)}
  {widen}
  %pr = getelementptr {ref_t}, ptr addrspace(1) %ref, i64 %i
  %r = load {ref_t}, ptr addrspace(1) %pr, align {_align(ref_t)}
  %pt = getelementptr {ref_t}, ptr addrspace(1) %tol, i64 %i
  %t = load {ref_t}, ptr addrspace(1) %pt, align {_align(ref_t)}
  %d0 = fsub {ref_t} {ow}, %r
  %d = call {ref_t} @llvm.fabs.{_suffix(ref_t)}({ref_t} %d0)
  %ok = fcmp ole {ref_t} %d, %t
  %bad = xor i1 %ok, true
  %bad32 = zext i1 %bad to i32
  %fails2 = add i32 %fails, %bad32
  %larger = fcmp ogt {ref_t} %d, %worst
  %take = and i1 %ok, %larger
  %worst2 = select i1 %take, {ref_t} %d, {ref_t} %worst
  %next = add i64 %i, %stride
  br label %head

done:
  %any = icmp ne i32 %fails, 0
  br i1 %any, label %count, label %maxed

count:
  %c = atomicrmw add ptr addrspace(1) %result, i32 %fails monotonic
  br label %maxed

maxed:
  {worst_d}
  %bits = bitcast double {wd} to i64
  %pw = getelementptr i8, ptr addrspace(1) %result, i64 8
  %m = atomicrmw umax ptr addrspace(1) %pw, i64 %bits monotonic
  ret void
}}
"""


def _suffix(llvm_type: str) -> str:
    return {"float": "f32", "double": "f64"}[llvm_type]


def _align(llvm_type: str) -> int:
    return {"float": 4, "double": 8}[llvm_type]


@functools.cache
def check_ptx(out_dtype: str, ref_dtype: str, target: CudaTarget) -> str:
    """PTX of :func:`check_ir` for ``target`` (made once per process and pair)."""
    return nvptx_assembly(check_ir(np.dtype(out_dtype), np.dtype(ref_dtype)), target)


@dataclass
class _Output:
    ref: int  # device pointers
    tol: int
    size: int
    fn: Any  # the loaded comparison kernel for this output's dtypes


class DeviceCheck:
    """One case's references and tolerances on the device, and the kernels comparing an
    output with them. ``__call__`` gives ``(passed, worst difference)``, or None where the
    device cannot decide (an output this kernel does not handle: the host checks)."""

    def __init__(self, driver, outputs, refs, tolerances, all_finite: bool,
                 target: CudaTarget):
        self.outputs: list[_Output | None] = []
        self.result = int(check(driver.cuMemAlloc(RESULT_BYTES), "cuMemAlloc"))
        self.blocks = BLOCKS_PER_SM * target.sm_count
        for out, ref, tol in zip(outputs, refs, tolerances, strict=True):
            if not (all_finite and supported(out.dtype, ref.dtype)):
                self.outputs.append(None)
                continue
            ptrs = []
            for a in (np.ascontiguousarray(ref), np.ascontiguousarray(tol, dtype=ref.dtype)):
                ptr = int(check(driver.cuMemAlloc(max(a.nbytes, 4)), "cuMemAlloc"))
                call(driver.cuMemcpyHtoD(ptr, a.ctypes.data, a.nbytes), "copying a reference")
                ptrs.append(ptr)
            fn = _function(driver, str(out.dtype), str(ref.dtype), target)
            self.outputs.append(_Output(ptrs[0], ptrs[1], out.size, fn))

    @property
    def applies(self) -> bool:
        return all(o is not None for o in self.outputs)

    def __call__(self, driver, output_ptrs: list[int]) -> tuple[bool, float] | None:
        if not self.applies:
            return None
        worst = 0.0
        for plan, ptr in zip(self.outputs, output_ptrs, strict=True):
            assert plan is not None
            call(driver.cuMemsetD8(self.result, 0, RESULT_BYTES), "clearing the check")
            args = [ctypes.c_void_p(ptr), ctypes.c_void_p(plan.ref), ctypes.c_void_p(plan.tol),
                    ctypes.c_int64(plan.size), ctypes.c_void_p(self.result)]
            array = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
            blocks = max(1, min(self.blocks, math.ceil(plan.size / THREADS)))
            call(driver.cuLaunchKernel(plan.fn, blocks, 1, 1, THREADS, 1, 1, 0, 0,
                                       ctypes.addressof(array), 0), "launching the check")
            raw = np.zeros(2, np.uint64)
            call(driver.cuMemcpyDtoH(raw.ctypes.data, self.result, RESULT_BYTES),
                 "reading the check")
            if int(raw[0]) & 0xFFFFFFFF:
                return False, math.inf
            worst = max(worst, float(raw[1:].view(np.float64)[0]))
        return True, worst

    def free(self, driver) -> None:
        for plan in self.outputs:
            if plan is not None:
                driver.cuMemFree(plan.ref)
                driver.cuMemFree(plan.tol)
        driver.cuMemFree(self.result)


_functions: dict[tuple[str, str, CudaTarget], Any] = {}  # loaded in this process's context


def _function(driver, out_dtype: str, ref_dtype: str, target: CudaTarget):
    key = (out_dtype, ref_dtype, target)
    if key not in _functions:
        ptx = check_ptx(out_dtype, ref_dtype, target).encode() + b"\0"
        module = check(driver.cuModuleLoadData(ptx), "loading the output check")
        _functions[key] = check(driver.cuModuleGetFunction(module, ENTRY.encode()),
                                "the output check's kernel")
    return _functions[key]
