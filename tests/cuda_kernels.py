"""Hand-written CUDA kernels for the GPU runner's tests (not the code generator's): LLVM IR
for one elementwise kernel, made PTX by llvmlite's NVPTX backend and, where ``ptxas`` is
installed, a cubin."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import llvmlite.binding as llvm

from probsched.codegen.gpu_kernel import GpuKernel
from probsched.codegen.runtime import ArgSpec, KernelSignature
from probsched.target.cuda import CudaTarget

_IR = """
target triple = "nvptx64-nvidia-cuda"
declare i32 @llvm.nvvm.read.ptx.sreg.tid.x()
declare i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
declare i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
define ptx_kernel void @{entry}(ptr addrspace(1) noalias readonly %A,
                                ptr addrspace(1) noalias %B) {{
entry:
  %t = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %b = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %n = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %bn = mul i32 %b, %n
  %i = add i32 %bn, %t
  %ok = icmp slt i32 %i, {n}
  br i1 %ok, label %body, label %done
body:
  %i64 = sext i32 %i to i64
  %pa = getelementptr float, ptr addrspace(1) %A, i64 %i64
  %a = load float, ptr addrspace(1) %pa
  %v = fmul float %a, {factor}
  %o = add i64 %i64, {offset}
  %pb = getelementptr float, ptr addrspace(1) %B, i64 %o
  store float %v, ptr addrspace(1) %pb
  br label %done
done:
  ret void
}}
"""


def scale_kernel(target: CudaTarget, n: int, *, factor: float = 2.0, offset: int = 0,
                 entry: str = "scale", threads: int = 256) -> GpuKernel:
    """``B[i] = A[i] * factor`` for ``i < n``, stored ``offset`` elements away (0: right;
    2**34: 64 GB past the buffer, an illegal address)."""
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    ir = _IR.format(entry=entry, n=n, factor=f"{factor:.6e}", offset=offset)
    mod = llvm.parse_assembly(ir)
    mod.verify()
    machine = llvm.Target.from_triple(target.triple).create_target_machine(
        cpu=target.arch, features=target.ptx_features, opt=3)
    ptx = machine.emit_assembly(mod)
    cubin = None
    if shutil.which("ptxas"):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
            src.write_text(ptx)
            subprocess.run(["ptxas", f"-arch={target.arch}", "-o", str(out), str(src)],
                           check=True, capture_output=True)
            cubin = out.read_bytes()
    sig = KernelSignature(entry, (ArgSpec("A", (n,), "float32", False),
                                  ArgSpec("B", (n,), "float32", True)))
    blocks = -(-n // threads)
    return GpuKernel(entry, ptx, cubin, (blocks, 1, 1), (threads, 1, 1), 0, sig, target, 0.0)
