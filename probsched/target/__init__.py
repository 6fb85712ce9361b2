"""What code is built for: the :class:`Target` value, made once and passed down explicitly.

The schedule's queries (``vector_lanes()``, ``vector_registers()``, ``cache_bytes(level)``,
``num_cores()``), codegen, the builder and the database's record keys all read a target given
to them; :func:`resolve` is the one place that turns "none given" into the host.

Kinds: :class:`~.cpu.CpuTarget` (``"host"`` or an x86-64 level such as ``"x86-64-v3"``) and
:class:`~.cuda.CudaTarget` (``"cuda"``, ``"sm_90"``, ``"cuda:sm_80"``: a device description;
a real device is read by :func:`probsched.measure.cuda.device_target`), with the same
``kind``, ``key`` and ``describe``.

>>> resolve(None) is host()
True
>>> resolve("x86-64-v3").cpu
'x86-64-v3'
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import ProbschedError
from .cpu import LEVELS, CpuTarget, cpu_target, host
from .cuda import CudaTarget, cuda_target

__all__ = ["LEVELS", "CpuTarget", "CudaTarget", "Target", "cpu_target", "cuda_target", "host",
           "resolve"]


@runtime_checkable
class Target(Protocol):
    """What every kind of target says of itself."""

    @property
    def kind(self) -> str:
        """The kind of target (``"cpu"``); a class attribute of each kind."""

    @property
    def key(self) -> str:
        """Records measured for this target are stored and looked up under this text."""

    def describe(self) -> str:
        """One line for people: what the code is for."""


def resolve(target: Target | str | None) -> Target:
    """The target to use: the host when ``None``, a target by name (``"host"``, ``"cpu"``,
    ``"x86-64-v3"``, ``"cuda"``, ``"sm_90"``, ``"cuda:sm_80"``, ...), or ``target`` itself."""
    if target is None:
        return host()
    if isinstance(target, str):
        if target == "cuda" or target.startswith(("cuda:", "sm_")):
            return cuda_target(target.removeprefix("cuda:"))
        return cpu_target("host" if target == "cpu" else target)
    if isinstance(target, (CpuTarget, CudaTarget)):
        return target
    raise ProbschedError(f"not a target: {target!r} (give a name such as 'host', "
                         f"'x86-64-v3' or 'cuda', or a probsched.target.CpuTarget or "
                         f"CudaTarget)")
