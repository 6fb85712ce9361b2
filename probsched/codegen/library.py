"""A kernel as a shared library with a plain C ABI, and loaded back without compiling.

:func:`write_library` builds a program's kernel for a CPU target into three files of a
folder: ``NAME.o`` (the object code LLVM emits, as the builder's), ``libNAME.so`` (that object
linked by the system C compiler, with libgomp where the kernel has parallel loops, so that it
loads in any process: probsched is not needed to call it) and ``NAME.h`` (the C declaration
with the shapes, dtypes and layout of every array: :mod:`.c_header`). The function is
``void NAME(const float *A, ..., float *C)``: inputs then outputs, each a row-major,
contiguous array, as :class:`~.runtime.Kernel` calls it.

The object code describes itself: it defines ``probsched_kernel_info``, a NUL-terminated JSON
text (the entry, every argument's name, shape, dtype and role, the CPU features the code
needs, and what the caller adds under ``about``). :func:`load_library` reads it from the
library, checks the features against this host and returns a :class:`~.runtime.Kernel` on
the library's function: no compiler, no LLVM.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import CodegenError, ProbschedError, ResourceError
from ..ir.program import Program
from ..target import Target, host
from . import machine as M
from .c_header import C_TYPES, c_identifier, header_text
from .compile import cpu
from .llvm import lower_program
from .runtime import ArgSpec, Kernel, KernelSignature

INFO_SYMBOL = "probsched_kernel_info"
INFO_FORMAT = "probsched-kernel 1"


@dataclass(frozen=True)
class LibraryFiles:
    """What :func:`write_library` wrote, and the function's signature."""

    library: Path
    header: Path
    object: Path
    signature: KernelSignature
    openmp: bool


def write_library(program: Program, directory: str | os.PathLike[str], *,
                  target: Target | str | None = None, name: str | None = None,
                  about: Mapping[str, object] | None = None, comment: str = "",
                  compiler: str = "cc") -> LibraryFiles:
    """Build ``program``'s kernel for ``target`` (the host when None) into ``directory``:
    ``NAME.o``, ``libNAME.so`` and ``NAME.h``. ``name``: the C function's name (default the
    program's, made a C identifier); ``about``: plain values stored in the library's
    description (JSON); ``comment``: text for the header's opening comment; ``compiler``:
    the C compiler that links the library."""
    t = cpu(target)
    entry = c_identifier(program.name if name is None else name)
    if name is not None and entry != name:
        raise ProbschedError(f"export name {name!r} is not a C identifier (letters, digits "
                             f"and '_', not starting with a digit, no C keyword)")
    lowered = lower_program(dataclasses.replace(program, name=entry), t)
    sig = lowered.signature
    for arg in sig.args:
        if arg.dtype not in C_TYPES:
            raise CodegenError(f"{arg.name} is {arg.dtype}, which has no C type here")
    openmp = "@GOMP_parallel(" in lowered.ir
    info = {"format": INFO_FORMAT, "entry": sig.entry,
            "args": [dataclasses.asdict(a) for a in sig.args],
            "triple": t.triple, "cpu": t.cpu, "requires": sorted(t.requires),
            "openmp": openmp, "about": dict(about or {})}
    ir = lowered.ir + "\n" + _info_global(json.dumps(info, sort_keys=True))
    obj = M.emit_object(M.optimize(ir, t), t)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = LibraryFiles(out / f"lib{entry}.so", out / f"{entry}.h", out / f"{entry}.o", sig,
                         openmp)
    files.object.write_bytes(obj)
    link_shared(files.object, files.library, openmp=openmp, compiler=compiler)
    files.header.write_text(header_text(sig, t, openmp=openmp, comment=comment))
    return files


def _info_global(text: str) -> str:
    """An LLVM global holding ``text`` (ASCII) as a NUL-terminated C string."""
    data = text.encode("ascii") + b"\0"
    body = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:02X}"
                   for b in data)
    return f'@{INFO_SYMBOL} = constant [{len(data)} x i8] c"{body}", align 1\n'


def link_shared(obj: Path, library: Path, *, openmp: bool, compiler: str = "cc") -> None:
    """Link object file ``obj`` into shared library ``library`` with ``compiler`` (libgomp
    linked in when ``openmp``); refuses an undefined symbol at link time, not at load."""
    exe = shutil.which(compiler)
    if exe is None:
        raise ResourceError(f"no C compiler {compiler!r} on PATH to link {library.name} "
                            "(install gcc or clang, or pass another compiler)")
    cmd = [exe, "-shared", "-o", str(library), str(obj), f"-Wl,-soname,{library.name}",
           "-Wl,--no-undefined", "-Wl,-z,noexecstack", *(["-lgomp"] if openmp else [])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodegenError(f"linking {library.name} failed: {exc}") from None
    if done.returncode != 0:
        hint = " (libgomp: install gcc's libgomp1)" if "gomp" in done.stderr else ""
        raise CodegenError(f"linking {library.name} with {compiler} failed{hint}: "
                           f"{done.stderr.strip() or done.returncode}")


def load_library(path: str | os.PathLike[str]) -> Kernel:
    """A library written by :func:`write_library`, loaded with ctypes as a
    :class:`~.runtime.Kernel` (``kernel(*inputs)`` -> outputs; shapes and dtypes checked);
    refused when it is not one, or its code needs CPU features this host lacks."""
    p = Path(path)
    if not p.is_file():
        raise ProbschedError(f"{p}: no such kernel library")
    try:
        lib = ctypes.CDLL(str(p.resolve()))
    except OSError as exc:
        raise ProbschedError(f"{p}: cannot load it as a shared library ({exc})") from None
    info = read_info(lib, p)
    missing = sorted(set(info.get("requires", ())) - host().requires)
    if missing:
        raise CodegenError(f"{p}: its code was built for {info['cpu']} and needs "
                           f"{', '.join(missing)}, which this host ({host().cpu}) lacks")
    try:
        sig = KernelSignature(str(info["entry"]), tuple(
            ArgSpec(str(a["name"]), tuple(int(n) for n in a["shape"]), str(a["dtype"]),
                    bool(a["output"])) for a in info["args"]))
        fn = getattr(lib, sig.entry)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProbschedError(f"{p}: its description does not match its code ({exc!r})"
                             ) from None
    return Kernel(lib, int(ctypes.cast(fn, ctypes.c_void_p).value or 0), sig)


def read_info(lib: ctypes.CDLL, path: Path) -> dict:
    """The description a kernel library holds (see the module docstring)."""
    try:
        at = ctypes.addressof(ctypes.c_char.in_dll(lib, INFO_SYMBOL))
    except ValueError:
        raise ProbschedError(f"{path}: not a kernel library written by probsched (it has "
                             f"no {INFO_SYMBOL})") from None
    try:
        info = json.loads(ctypes.string_at(at).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("format") != INFO_FORMAT:
        raise ProbschedError(f"{path}: its {INFO_SYMBOL} is not a description this version "
                             f"reads ({INFO_FORMAT})")
    return info
