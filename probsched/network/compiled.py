"""The compiled network: one kernel per distinct task, called in graph order on planned
buffers, the weights bound once as constant inputs. ``net(*inputs)`` takes the model's
inputs (numpy, in order) and returns copies of its outputs.

``schedule="naive"`` compiles each task's plain lowering, ``"sampled"`` one schedule drawn
from the generated space (``seed``), checked against the numpy reference on random inputs;
where the space refuses the task or its kernel is wrong, the plain lowering (``fallbacks``
names those tasks). ``"tuned"`` replays each task's best correct record in the tuning
database ``db`` (the median of its timings, for this host), the plain lowering where a task
has none (in ``fallbacks`` too). ``kernels`` (by task hash) overrides the schedule for the
tasks it names: a given assignment's kernels (:func:`probsched.network.latency.compile_assignment`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..codegen import Kernel, compile_program
from ..errors import ModelError, ProbschedError
from ..ir.compute import Workload
from ..ir.program import lower
from ..ir.reference import check_outputs, random_inputs, reference
from ..measure.runner import aligned_copy, aligned_empty
from ..search.database import TuningDatabase
from ..target import host
from .plan import BufferPlan, plan_buffers

if TYPE_CHECKING:
    from .network import Network

SCHEDULES = ("naive", "sampled", "tuned")


def tuned_kernel(wl: Workload, db: TuningDatabase) -> Kernel | None:
    """The kernel of ``wl``'s best correct record in ``db`` for this host (None: none)."""
    target = host()
    best = db.best(wl, 1, target=target.key)
    if not best:
        return None
    try:
        return compile_program(best[0].trace.replay(wl, target=target).program, target=target)
    except ProbschedError:
        return None


def task_kernel(wl: Workload, schedule: str, seed: int,
                db: TuningDatabase | None = None) -> tuple[Kernel, bool]:
    """A task's kernel, and whether it is the plain lowering standing in for a sample."""
    if schedule == "naive":
        return compile_program(lower(wl)), False
    if schedule == "tuned":
        tuned = tuned_kernel(wl, db) if db is not None else None
        return (tuned, False) if tuned is not None else (compile_program(lower(wl)), True)
    from ..rules import generated_space
    from ..schedule import Schedule

    try:
        sch = Schedule(wl, seed=seed)
        generated_space().apply(sch)
        kernel = compile_program(sch.program)
        inputs = random_inputs(wl, seed)
        ok, _, _ = check_outputs(kernel(*inputs), reference(wl, *inputs))
    except ProbschedError:
        ok = False
    return (kernel, False) if ok else (compile_program(lower(wl)), True)


class CompiledNetwork:
    """Kernels, the buffer plan and the bound calls of one network."""

    def __init__(self, network: Network, *, schedule: str = "naive", seed: int = 0,
                 db: TuningDatabase | None = None, kernels: Mapping[str, Kernel] | None = None):
        if schedule not in SCHEDULES:
            raise ModelError(f"schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if schedule == "tuned" and db is None:
            raise ModelError('schedule "tuned" needs a tuning database (db=...)')
        self.network = network
        graph = network.graph
        self.kernels: dict[str, Kernel] = {}
        self.fallbacks: list[str] = []
        given = dict(kernels or {})
        unknown = set(given) - {t.hash for t in network.tasks}
        if unknown:
            raise ModelError(f"kernels given for tasks the network does not have: "
                             f"{', '.join(sorted(unknown))}")
        for t in network.tasks:
            if t.hash in given:
                self.kernels[t.hash] = given[t.hash]
                continue
            self.kernels[t.hash], fell_back = task_kernel(t.workload, schedule, seed, db)
            if fell_back:
                self.fallbacks.append(t.hash)
        shapes = {op.output: op.shape for op in graph.ops}
        self.plan: BufferPlan = plan_buffers(network.steps, shapes, set(graph.outputs))
        self._buffers = self.plan.allocate()
        self._inputs = {name: aligned_empty(s, np.float32) for name, s in graph.inputs.items()}
        arrays: dict[str, np.ndarray] = {
            **{k: aligned_copy(np.asarray(v, np.float32)) for k, v in graph.constants.items()},
            **self._inputs, **self._buffers}
        self._calls: list[Callable[[], object]] = [
            self.kernels[st.task].bind(*(arrays[v] for v in st.inputs), arrays[st.output])
            for st in network.steps]
        self._keep = arrays  # the bound calls point into these

    @property
    def calls(self) -> tuple[Callable[[], object], ...]:
        """The bound kernel calls, one per step of the network (``network.steps``), in
        order; they read the inputs of the last ``net(...)`` call."""
        return tuple(self._calls)

    @property
    def naive_bytes(self) -> int:
        """What the intermediates would take without reuse."""
        return sum(4 * a.size for a in self._buffers.values())

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        names = list(self._inputs)
        if len(inputs) != len(names):
            raise ModelError(f"the network takes {len(names)} inputs ({', '.join(names)}), "
                             f"got {len(inputs)}")
        for name, x in zip(names, inputs, strict=True):
            x = np.asarray(x)
            if x.shape != self._inputs[name].shape:
                raise ModelError(f"input {name!r}: shape {x.shape}, expected "
                                 f"{self._inputs[name].shape}")
            np.copyto(self._inputs[name], x, casting="same_kind")
        for call in self._calls:
            call()
        return tuple(self._buffers[v].copy() for v in self.network.graph.outputs)
