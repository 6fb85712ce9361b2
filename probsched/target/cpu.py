"""CPU targets: what code for a CPU is built for, read from the host or named.

A :class:`CpuTarget` is plain data: the LLVM triple, CPU name and feature string that codegen
compiles for, and what the schedule space needs to know of the machine (float vector width,
vector register count, cache sizes, cores). :func:`host` reads the machine this process runs
on, once. :func:`cpu_target` names a narrower x86-64 level (``"x86-64-v3"``: AVX2 and FMA,
16 ymm registers) whose code runs on this host: code built for AVX2 can be timed on an
AVX-512 machine, with the host's caches and cores.

>>> t = cpu_target("x86-64-v3")
>>> t.vector_lanes(), t.vector_registers
(8, 16)
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from ..errors import ProbschedError

_DTYPE_BITS = {"float32": 32, "float64": 64, "int32": 32, "int64": 64, "bool": 8}


@dataclass(frozen=True)
class CpuTarget:
    """Code for a CPU. ``features`` is LLVM's feature string (empty: the CPU name's own);
    ``requires`` the host features that code for it needs; caches are per core except L3."""

    triple: str
    cpu: str
    features: str
    vector_bits: int  # widest native float vector
    vector_registers: int
    cores: int
    l1d_bytes: int
    l2_bytes: int
    l3_bytes: int
    requires: frozenset[str] = frozenset()

    kind: ClassVar[str] = "cpu"

    def __repr__(self) -> str:
        return f"CpuTarget({self.key!r})"

    def vector_lanes(self, dtype: str = "float32") -> int:
        """Lanes of ``dtype`` in one native vector register."""
        try:
            return max(1, self.vector_bits // _DTYPE_BITS[dtype])
        except KeyError:
            raise ProbschedError(f"vector_lanes: unknown dtype {dtype!r}; known: "
                                 f"{', '.join(_DTYPE_BITS)}") from None

    def cache_bytes(self, level: int) -> int:
        """The size of the level-``level`` data cache (1, 2 or 3)."""
        sizes = {1: self.l1d_bytes, 2: self.l2_bytes, 3: self.l3_bytes}
        if level not in sizes:
            raise ProbschedError(f"cache_bytes: level must be 1, 2 or 3, got {level!r}")
        return sizes[level]

    @property
    def wide_vectors(self) -> bool:
        """512-bit vectors: LLVM must be told to prefer them over 256-bit ones."""
        return self.vector_bits >= 512

    @property
    def llvm_features(self) -> str:
        """The feature string for LLVM's target machine and function attributes."""
        if self.wide_vectors:
            return ",".join(f for f in (self.features, "-prefer-256-bit") if f)
        return self.features

    @property
    def key(self) -> str:
        """What records of this target are stored under: equal for targets that build the
        same code for the same number of cores."""
        out = f"{self.triple} cpu={self.cpu} vector={self.vector_bits}b cores={self.cores}"
        if self.features:
            digest = hashlib.sha1(self.features.encode()).hexdigest()[:8]
            out += f" features={digest}"
        return out

    def describe(self) -> str:
        return (f"{self.cpu} ({self.triple}), {self.vector_bits}-bit vectors x "
                f"{self.vector_registers} registers, {self.cores} cores, L1d "
                f"{_size(self.l1d_bytes)}, L2 {_size(self.l2_bytes)}, L3 {_size(self.l3_bytes)}")

    def missing_on(self, host_target: CpuTarget) -> list[str]:
        """The features this target's code needs that ``host_target`` lacks."""
        have = host_target.requires
        return sorted(self.requires - have)

    def with_cores(self, cores: int) -> CpuTarget:
        if not isinstance(cores, int) or cores < 1:
            raise ProbschedError(f"cores must be a positive integer, got {cores!r}")
        return replace(self, cores=cores)


# x86-64 micro-architecture levels LLVM knows as CPU names: vector width, registers and the
# host features their code needs (a few telling ones per level).
LEVELS = {
    "x86-64-v2": (128, 16, frozenset({"sse4.2", "popcnt", "ssse3"})),
    "x86-64-v3": (256, 16, frozenset({"sse4.2", "popcnt", "ssse3", "avx", "avx2", "fma",
                                      "bmi2", "f16c"})),
    "x86-64-v4": (512, 32, frozenset({"sse4.2", "popcnt", "ssse3", "avx", "avx2", "fma",
                                      "bmi2", "f16c", "avx512f", "avx512bw", "avx512dq",
                                      "avx512vl", "avx512cd"})),
}


@functools.cache
def host() -> CpuTarget:
    """The CPU this process runs on (read once): LLVM's name and features for it, its cache
    sizes from the OS and the cores this process may use."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()  # inline asm (a tensor intrinsic may emit some)
    triple = llvm.get_process_triple()
    feats = llvm.get_host_cpu_features()
    enabled = frozenset(name for name, on in feats.items() if on)
    x86 = triple.startswith(("x86_64", "i686", "i386"))
    if "avx512f" in enabled:
        bits, regs = 512, 32
    elif "avx" in enabled:
        bits, regs = 256, 16
    else:
        bits, regs = 128, (16 if x86 else 32)
    l1, l2, l3 = _caches()
    return CpuTarget(triple, llvm.get_host_cpu_name(), feats.flatten(), bits, regs,
                     _cores(), l1, l2, l3, enabled)


def cpu_target(name: str) -> CpuTarget:
    """A target by name: ``"host"``, or an x86-64 level (``"x86-64-v2"``, ``"-v3"``,
    ``"-v4"``) on this host's triple, caches and cores."""
    h = host()
    if name in ("host", "native"):
        return h
    if name not in LEVELS:
        raise ProbschedError(f"unknown CPU target {name!r}; known: host, {', '.join(LEVELS)}")
    if not h.triple.startswith("x86_64"):
        raise ProbschedError(f"CPU target {name} is for x86-64; this host is {h.triple}")
    bits, regs, requires = LEVELS[name]
    return CpuTarget(h.triple, name, "", bits, regs, h.cores, h.l1d_bytes, h.l2_bytes,
                     h.l3_bytes, requires)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# When the OS does not say: typical sizes of recent x86 server cores.
_DEFAULT_CACHES = (32 * 1024, 1024 * 1024, 32 * 1024 * 1024)


def _caches() -> tuple[int, int, int]:
    """L1d, L2 and L3 sizes in bytes, from sysfs (Linux), else sysconf, else defaults."""
    found: dict[int, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = _parse_size((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and level in (1, 2, 3):
            found[level] = size
    names = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE", 3: "SC_LEVEL3_CACHE_SIZE"}
    for level, name in names.items():
        if level not in found:
            try:
                value = os.sysconf(name)
            except (ValueError, OSError):
                value = 0
            if value > 0:
                found[level] = value
    l1, l2, l3 = (found.get(k, _DEFAULT_CACHES[k - 1]) for k in (1, 2, 3))
    return l1, l2, l3


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"
