"""Buffer planning for a compiled network: every intermediate value gets a view of one of a
few flat float32 arenas, reused once the value's last reader has run (best fit among the
free arenas, the smallest that holds it, else a new one)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..measure.runner import aligned_empty
from .tasks import Step


@dataclass(frozen=True)
class BufferPlan:
    """Which arena (and shape) each value lives in, and the arenas' sizes in elements."""

    slots: Mapping[str, tuple[int, tuple[int, ...]]]
    arenas: tuple[int, ...]

    @property
    def bytes(self) -> int:
        return 4 * sum(self.arenas)

    def allocate(self) -> dict[str, np.ndarray]:
        """Arrays for every planned value (views of freshly allocated arenas, 64-byte
        aligned as the runner's buffers are)."""
        arenas = [aligned_empty((n,), np.float32) for n in self.arenas]
        return {v: arenas[a][: math.prod(s)].reshape(s) for v, (a, s) in self.slots.items()}


def plan_buffers(steps: Sequence[Step], shapes: Mapping[str, tuple[int, ...]],
                 keep: set[str]) -> BufferPlan:
    """Plan the outputs of ``steps`` (run in order); values in ``keep`` (the network's
    outputs) are never reused."""
    last_use: dict[str, int] = {}
    for k, st in enumerate(steps):
        for v in st.inputs:
            last_use[v] = k
    arenas: list[int] = []
    free: list[int] = []
    slots: dict[str, tuple[int, tuple[int, ...]]] = {}
    for k, st in enumerate(steps):
        size = math.prod(shapes[st.output])
        fits = [a for a in free if arenas[a] >= size]
        if fits:
            a = min(fits, key=lambda a: arenas[a])
        elif free:  # grow the largest free arena rather than adding one
            a = max(free, key=lambda a: arenas[a])
            arenas[a] = size
        else:
            a = len(arenas)
            arenas.append(size)
        if a in free:
            free.remove(a)
        slots[st.output] = (a, shapes[st.output])
        for v in dict.fromkeys(st.inputs):
            if v in slots and last_use.get(v) == k and v not in keep:
                free.append(slots[v][0])
    return BufferPlan(slots, tuple(arenas))
