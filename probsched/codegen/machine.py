"""LLVM for a CPU target: target machines, the O3 pipeline, object code and assembly.

Facts behind the choices (measured, see notes/llvmlite.md): only the native target is
initialised (``llvm.initialize()`` raises in llvmlite 0.50); each module gets a fresh pass
builder; on AVX-512 targets the 256-bit preference is removed so vectorized code uses zmm.

The schedule decides vectorization and unrolling. By default LLVM's loop vectorizer and
unroller act only where the IR asks them to (loop metadata); the SLP vectorizer stays on for
straight-line code. Letting LLVM apply its own loop heuristics (``llvm_loop_heuristics=True``)
costs 1.5-2.5x the compile time on the suite's naive kernels, does not help explicitly
scheduled ones, and makes a candidate's speed depend on heuristics the search cannot see
(docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm

from ..errors import CodegenError
from ..target import CpuTarget, CudaTarget, host


def function_attributes(target: CpuTarget) -> str:
    """The attributes every generated function carries: CPU, features, vector width."""
    attrs = f'"target-cpu"="{target.cpu}"'
    if target.llvm_features:
        attrs += f' "target-features"="{target.llvm_features}"'
    if target.wide_vectors:
        attrs += ' "prefer-vector-width"="512"'
    return attrs


@functools.cache
def _target_machine(target: CpuTarget) -> llvm.TargetMachine:
    host()  # initialises LLVM's native target
    machine = llvm.Target.from_triple(target.triple)
    return machine.create_target_machine(cpu=target.cpu, features=target.llvm_features,
                                         opt=3, reloc="pic")


def new_jit_target_machine() -> llvm.TargetMachine:
    """MCJIT owns its target machine: each engine needs its own (the host's: object code
    is loaded, not compiled, by it)."""
    h = host()
    machine = llvm.Target.from_triple(h.triple)
    return machine.create_target_machine(cpu=h.cpu, features=h.llvm_features, opt=3, jit=True)


def parse(ir_text: str) -> llvm.ModuleRef:
    host()
    try:
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
    except RuntimeError as exc:
        raise CodegenError(f"generated LLVM IR is invalid: {exc}") from None
    return mod


def optimize(ir_text: str, target: CpuTarget, *,
             llvm_loop_heuristics: bool = False) -> llvm.ModuleRef:
    """Parse, verify and run the O3 pipeline on a module for ``target``."""
    # False means "only when forced by loop metadata" in LLVM's new pass manager.
    return _o3(parse(ir_text), _target_machine(target), target.triple,
               vectorize=llvm_loop_heuristics, unroll=llvm_loop_heuristics,
               interleave=llvm_loop_heuristics)


def _o3(mod: llvm.ModuleRef, tm: llvm.TargetMachine, triple: str, *, vectorize: bool,
        unroll: bool, interleave: bool) -> llvm.ModuleRef:
    """``mod`` for ``tm`` through LLVM's O3 module pipeline (SLP vectorization on; the loop
    vectorizer, unroller and interleaving as asked)."""
    mod.triple = triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(3)
    pto.slp_vectorization = True
    pto.loop_vectorization = vectorize
    pto.loop_unrolling = unroll
    pto.loop_interleaving = interleave
    pb = llvm.create_pass_builder(tm, pto)  # fresh per module: reuse slows down over time
    pb.getModulePassManager().run(mod, pb)
    return mod


def emit_object(mod: llvm.ModuleRef, target: CpuTarget) -> bytes:
    return _target_machine(target).emit_object(mod)


def emit_assembly(mod: llvm.ModuleRef, target: CpuTarget) -> str:
    return _target_machine(target).emit_assembly(mod)


# ---------------------------------------------------------------- NVPTX (cuda targets)


@functools.cache
def _nvptx_machine(target: CudaTarget) -> llvm.TargetMachine:
    host()
    llvm.initialize_all_targets()  # NVPTX is not the native target
    llvm.initialize_all_asmprinters()
    machine = llvm.Target.from_triple(target.triple)
    return machine.create_target_machine(cpu=target.arch, features=target.ptx_features, opt=3)


def nvptx_assembly(ir_text: str, target: CudaTarget) -> str:
    """PTX of NVVM IR text: parsed, verified, the O3 pipeline, then the NVPTX backend."""
    tm = _nvptx_machine(target)
    # constant-trip loops over registers unroll
    mod = _o3(parse(ir_text), tm, target.triple, vectorize=False, unroll=True, interleave=True)
    return tm.emit_assembly(mod)  # mutates mod, which is not used again
