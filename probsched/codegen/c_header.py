"""The C header of an exported kernel (:mod:`.library`): its declaration, the shape, dtype and
layout of every array, the CPU it needs and the threads it runs on.

>>> from probsched.codegen.runtime import ArgSpec, KernelSignature
>>> sig = KernelSignature("scale", (ArgSpec("X", (2, 3), "float32", False),
...                                 ArgSpec("Y", (2, 3), "float32", True)))
>>> print(prototype(sig))
void scale(const float *X, float *Y);
>>> c_identifier("conv2d.nhwc"), c_identifier("int"), c_identifier("3x")
('conv2d_nhwc', 'int_', '_3x')
"""

from __future__ import annotations

import math
import re

from ..target import CpuTarget
from .runtime import ArgSpec, KernelSignature

C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t"}

C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum
extern float for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while bool true false alignas alignof
nullptr static_assert thread_local typeof _Bool _Complex _Generic _Noreturn""".split())


def c_identifier(name: str) -> str:
    """``name`` as a C identifier: other characters become ``_``, a leading digit and a C
    keyword get one too."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    return out + "_" if out in C_KEYWORDS else out


def parameter_names(sig: KernelSignature) -> list[str]:
    """The C parameter name of each argument: its name, made an identifier and distinct."""
    taken: set[str] = {sig.entry}
    names = []
    for arg in sig.args:
        name = c_identifier(arg.name)
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
    return names


def prototype(sig: KernelSignature) -> str:
    """The kernel's C declaration: inputs as ``const`` pointers, then outputs."""
    params = [f"{'' if a.output else 'const '}{C_TYPES[a.dtype]} *{n}"
              for a, n in zip(sig.args, parameter_names(sig), strict=True)]
    return f"void {sig.entry}({', '.join(params)});"


def _dims(arg: ArgSpec) -> str:
    return "".join(f"[{n}]" for n in arg.shape) or "[] (a scalar)"


def _comment(text: str) -> list[str]:
    return [f" * {line}".rstrip() for line in text.replace("*/", "* /").splitlines()]


def header_text(sig: KernelSignature, target: CpuTarget, *, openmp: bool,
                comment: str = "") -> str:
    """The whole header of ``sig``'s kernel built for ``target`` (``openmp``: it has
    parallel loops, run by libgomp); ``comment`` opens it (what was exported, from where)."""
    guard = f"PROBSCHED_{sig.entry.upper()}_H"
    names = parameter_names(sig)
    lines = ["/*", *_comment(comment)] if comment else ["/*"]
    if comment:
        lines.append(" *")
    lines += [
        f" * {prototype(sig)}",
        " *",
        " * Arguments: the inputs, then the outputs, each a pointer to the first element of an",
        " * array in row-major (C) order, contiguous: element [i0][i1]...[iN] of an array of",
        " * shape [d0][d1]...[dN] is at offset ((i0 * d1 + i1) * d2 + ...) * dN + iN. No",
        " * alignment beyond the element type's is needed (64 bytes is fastest). Outputs must",
        " * not overlap any other argument; every output element is written.",
        " *",
    ]
    for arg, name in zip(sig.args, names, strict=True):
        size = math.prod(arg.shape)
        role = "output" if arg.output else "input"
        lines.append(f" *   {name}: {role}, {arg.dtype} (C {C_TYPES[arg.dtype]}), shape "
                     f"{_dims(arg)}, {size} elements, {size * _bytes(arg.dtype)} bytes")
    lines += [
        " *",
        f" * Machine code for {target.triple}, CPU {target.cpu}: it runs on a CPU with the",
        " * features that one has.",
    ]
    if openmp:
        lines += [
            " * Parallel loops run on libgomp (GCC's OpenMP runtime, linked into the library;",
            " * to link the object file into a program instead, add -lgomp): OMP_NUM_THREADS",
            f" * threads (default: one per CPU); the kernel was tuned on {target.cores}.",
        ]
    else:
        lines.append(" * It runs on the calling thread (no parallel loop).")
    lines += [
        " * The function keeps no state: concurrent calls on distinct outputs are safe.",
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
    ]
    prefix = sig.entry.upper()
    for arg, name in zip(sig.args, names, strict=True):
        lines.append(f"#define {prefix}_{name}_RANK {len(arg.shape)}")
        lines.append(f"#define {prefix}_{name}_SIZE {math.prod(arg.shape)}")
        if arg.shape:
            lines.append(f"#define {prefix}_{name}_SHAPE {{{', '.join(map(str, arg.shape))}}}")
    lines += [
        "",
        prototype(sig),
        "",
        "/* The library's description of itself, as JSON text (probsched.load_kernel reads",
        "   it): the arguments and the CPU features the code needs. */",
        "extern const char probsched_kernel_info[];",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def _bytes(dtype: str) -> int:
    return 8 if dtype.endswith("64") else 4
