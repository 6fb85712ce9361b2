"""A small writer of LLVM IR text: values, types, constants, functions and a module.

We write IR as text rather than through ``llvmlite.ir``: it is several times faster to build,
and loop metadata, fast-math flags and function attributes are plain text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

LLVM_SCALAR = {
    "float32": "float",
    "float64": "double",
    "int32": "i32",
    "int64": "i64",
    "bool": "i1",
}
BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


@dataclass(frozen=True, slots=True)
class Value:
    """An SSA value or constant: ``ref`` is its text, ``dtype`` a probsched dtype, ``lanes`` 0
    for a scalar, else the vector width."""

    ref: str
    dtype: str
    lanes: int = 0

    @property
    def ty(self) -> str:
        return vec_type(self.dtype, self.lanes)

    @property
    def typed(self) -> str:
        return f"{self.ty} {self.ref}"


def vec_type(dtype: str, lanes: int) -> str:
    s = LLVM_SCALAR[dtype]
    return f"<{lanes} x {s}>" if lanes else s


def float_literal(value: float, dtype: str) -> str:
    """LLVM's text form of a float constant: the double hex of the (rounded) value."""
    if dtype == "float32":
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    return "0x{:016X}".format(struct.unpack("<Q", struct.pack("<d", value))[0])


def const(value: int | float | bool, dtype: str) -> Value:
    if dtype in ("float32", "float64"):
        return Value(float_literal(float(value), dtype), dtype)
    if dtype == "bool":
        return Value("true" if value else "false", dtype)
    return Value(str(int(value)), dtype)


def intrinsic_suffix(dtype: str, lanes: int) -> str:
    s = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "i1"}[dtype]
    return f"v{lanes}{s}" if lanes else s


@dataclass
class Function:
    """One function being written: entry allocas apart (so SROA can promote them), body lines,
    the current block's label and a counter for fresh names."""

    name: str
    params: str
    attrs: str = ""
    linkage: str = ""
    entry: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    block: str = "body"
    _n: int = 0

    def fresh(self, hint: str = "t") -> str:
        self._n += 1
        return f"%{hint}{self._n}"

    def label(self, hint: str) -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def op(self, text: str, dtype: str, lanes: int = 0, hint: str = "t") -> Value:
        """Emit ``%x = text`` and return it as a value."""
        ref = self.fresh(hint)
        self.lines.append(f"  {ref} = {text}")
        return Value(ref, dtype, lanes)

    def start_block(self, label: str) -> None:
        self.lines.append(f"{label}:")
        self.block = label

    def alloca(self, hint: str, ty: str, count: int, align: int = 64) -> str:
        ref = self.fresh(hint)
        self.entry.append(f"  {ref} = alloca [{count} x {ty}], align {align}")
        return ref

    def text(self) -> str:
        head = f"define {self.linkage}void @{self.name}({self.params}) {self.attrs} {{"
        return "\n".join(
            [head, "entry:", *self.entry, "  br label %body", "body:", *self.lines, "}"]
        )


@dataclass
class Module:
    """Functions, declarations (deduplicated) and loop metadata nodes."""

    functions: list[Function] = field(default_factory=list)
    declarations: dict[str, str] = field(default_factory=dict)
    metadata: list[str] = field(default_factory=list)
    attributes: str = ""
    _next_md: int = 0

    def declare(self, name: str, signature: str) -> str:
        self.declarations.setdefault(name, signature)
        return name

    def loop_metadata(self, *props: str) -> str:
        """A distinct loop id node with the given property nodes; returns ``!N``."""
        n = self._next_md
        ids = [f"!{n + 1 + k}" for k in range(len(props))]
        self.metadata.append(f"!{n} = distinct !{{!{n}{''.join(', ' + i for i in ids)}}}")
        self.metadata += [f"{i} = !{{{p}}}" for i, p in zip(ids, props, strict=True)]
        self._next_md += 1 + len(props)
        return f"!{n}"

    def text(self) -> str:
        parts = [f.text() for f in self.functions]
        parts += list(self.declarations.values())
        if self.attributes:
            parts.append(self.attributes)
        parts += self.metadata
        return "\n\n".join(parts) + "\n"
