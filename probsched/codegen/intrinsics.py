"""Tensor intrinsics: where one instruction (or a fixed sequence) is emitted for a whole tile.

This is the codegen's hook for MetaSchedule's ``tensorize``. A loop annotated
``tensorize = NAME`` (``sch.annotate(loop, "tensorize", "NAME")``) is not emitted as a loop:
the emitter (CPU or GPU) hands it to the :class:`Intrinsic` registered as NAME, which first
says whether the loop nest is its tile (``fits``: the reason it is not, or None) and then
writes its code through a :class:`Tile`: the values of index and data expressions at the
current bindings, the loop's body emitted as usual at chosen bindings, raw IR lines and
declarations. A loop the intrinsic refuses, or a name nobody registered, is a CodegenError
naming the loop, so the tuner records the candidate as a failed build.

A tensor-core intrinsic (``mma.sync`` for a 16x8x8 TF32 tile, say) would check in ``fits``
that the loop nest is that tile of a multiply-accumulate over shared or local fragments, and
in ``emit`` compute the fragments' addresses with :meth:`Tile.value`, load them, and emit the
instruction as inline PTX; none is registered yet (the GPU issue builds the hook only).

Registration is per process: a tuner's compile processes get theirs from
``Builder(intrinsics=...)`` (module-level functions, which travel by name). Here, built in
this process (an intrinsic that marks the tile and unrolls it):

>>> import probsched as ps
>>> from probsched.codegen import intrinsics
>>> from probsched.codegen.compile import build
>>> def unroll_marked(tile):
...     tile.line('call void asm sideeffect "# a tile", ""()')
...     for k in range(tile.loop.extent):
...         tile.bind(tile.loop.var, k)
...         tile.body()
>>> intrinsics.register(intrinsics.Intrinsic("marked", lambda loop: None, unroll_marked))
>>> sch = ps.Schedule(ps.workloads.gmm(b=1, n=8, m=8, k=8))
>>> sch.annotate(sch.get_loops(sch.get_block("C"))[-1], "tensorize", "marked")
>>> ps.measure(build(sch.program), sch.workload).correct
True
>>> intrinsics.unregister("marked")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import CodegenError
from ..ir import expr as E
from ..ir.program import Loop

TENSORIZE = "tensorize"
"""The loop annotation naming the intrinsic that emits the loop."""


class Tile(Protocol):
    """What an intrinsic's ``emit`` is given (the emitter provides it)."""

    loop: Loop  # the annotated loop (on the GPU, the plan's loop: same var, extent, body)
    isa: str  # what inline assembly is here: "cpu" (the host's) or "ptx"

    def value(self, e: E.Expr, dtype: str) -> str:
        """``e`` at the current bindings, as a typed LLVM operand (``"float %v3"``)."""
        ...

    def bind(self, var: str, value: int) -> None:
        """Bind loop variable ``var`` to a constant for what is emitted next."""
        ...

    def body(self) -> None:
        """Emit the loop's body once, as the emitter would, at the current bindings."""
        ...

    def line(self, text: str) -> None:
        """Emit one line of LLVM IR."""
        ...

    def declare(self, name: str, declaration: str) -> None:
        """Declare a function (an LLVM intrinsic) once per module."""
        ...


@dataclass(frozen=True)
class Intrinsic:
    """``fits(loop)``: why ``loop`` is not this intrinsic's tile (None: it is);
    ``emit(tile)``: writes the tile's code."""

    name: str
    fits: Callable[[Loop], str | None]
    emit: Callable[[Tile], None]


_REGISTERED: dict[str, Intrinsic] = {}


def register(intrinsic: Intrinsic) -> None:
    """Make ``intrinsic`` available to ``tensorize = intrinsic.name`` (replacing one of that
    name)."""
    _REGISTERED[intrinsic.name] = intrinsic


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def requested(loop: Any) -> str | None:
    """The intrinsic a loop's annotations ask for, if any."""
    name = dict(loop.annotations).get(TENSORIZE)
    return None if name is None else str(name)


def checked(loop: Any, name: str) -> Intrinsic:
    """The intrinsic ``name`` for ``loop``, or a CodegenError saying why not."""
    intrinsic = _REGISTERED.get(name)
    if intrinsic is None:
        known = ", ".join(sorted(_REGISTERED)) or "none"
        raise CodegenError(f"loop {loop.var} asks for intrinsic {name!r} (tensorize), which "
                           f"is not registered (registered: {known})")
    why = intrinsic.fits(loop)
    if why is not None:
        raise CodegenError(f"loop {loop.var} is not a tile of intrinsic {name!r}: {why}")
    return intrinsic


__all__ = ["TENSORIZE", "Intrinsic", "Tile", "checked", "register", "requested",
           "unregister"]
