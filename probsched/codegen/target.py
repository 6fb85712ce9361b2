"""The host target: CPU name and features, optimization, object code and assembly.

Facts behind the choices (measured, see notes/llvmlite.md): only the native target is
initialised (``llvm.initialize()`` raises in llvmlite 0.50); each module gets a fresh pass
builder; on AVX-512 hosts the 256-bit preference is removed so vectorized code uses zmm.

The schedule decides vectorization and unrolling. By default LLVM's loop vectorizer and
unroller act only where the IR asks them to (loop metadata); the SLP vectorizer stays on for
straight-line code. Letting LLVM apply its own loop heuristics (``llvm_loop_heuristics=True``)
costs 1.5-2.5x the compile time on the suite's naive kernels, does not help explicitly
scheduled ones, and makes a candidate's speed depend on heuristics the search cannot see
(docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import llvmlite.binding as llvm

from ..errors import CodegenError


@dataclass(frozen=True)
class HostTarget:
    triple: str
    cpu: str
    features: str
    vector_bits: int  # widest native float vector

    @property
    def f32_lanes(self) -> int:
        return self.vector_bits // 32

    def describe(self) -> str:
        return f"{self.triple} cpu={self.cpu} vector={self.vector_bits}b"


@functools.cache
def host() -> HostTarget:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    cpu = llvm.get_host_cpu_name()
    feats = llvm.get_host_cpu_features()
    has512 = bool(feats.get("avx512f"))
    features = feats.flatten()
    if has512:
        features += ",-prefer-256-bit"
    bits = 512 if has512 else 256 if feats.get("avx") else 128
    return HostTarget(triple, cpu, features, bits)


@functools.cache
def _target_machine() -> llvm.TargetMachine:
    h = host()
    target = llvm.Target.from_triple(h.triple)
    return target.create_target_machine(cpu=h.cpu, features=h.features, opt=3, reloc="pic")


def new_jit_target_machine() -> llvm.TargetMachine:
    """MCJIT owns its target machine: each engine needs its own."""
    h = host()
    target = llvm.Target.from_triple(h.triple)
    return target.create_target_machine(cpu=h.cpu, features=h.features, opt=3, jit=True)


def parse(ir_text: str) -> llvm.ModuleRef:
    host()
    try:
        mod = llvm.parse_assembly(ir_text)
        mod.verify()
    except RuntimeError as exc:
        raise CodegenError(f"generated LLVM IR is invalid: {exc}") from None
    return mod


def optimize(ir_text: str, *, llvm_loop_heuristics: bool = False) -> llvm.ModuleRef:
    """Parse, verify and run the O3 pipeline on a module."""
    mod = parse(ir_text)
    tm = _target_machine()
    mod.triple = host().triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(3)
    pto.slp_vectorization = True
    # False means "only when forced by loop metadata" in LLVM's new pass manager.
    pto.loop_vectorization = llvm_loop_heuristics
    pto.loop_unrolling = llvm_loop_heuristics
    pto.loop_interleaving = llvm_loop_heuristics
    pb = llvm.create_pass_builder(tm, pto)  # fresh per module: reuse slows down over time
    pb.getModulePassManager().run(mod, pb)
    return mod


def emit_object(mod: llvm.ModuleRef) -> bytes:
    return _target_machine().emit_object(mod)


def emit_assembly(mod: llvm.ModuleRef) -> str:
    return _target_machine().emit_assembly(mod)
