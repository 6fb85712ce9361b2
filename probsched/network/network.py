"""A whole model: its graph, fused groups, distinct tasks (each a Workload with a weight and
a structural hash) and the steps that run them; ``compile()`` makes it callable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .compiled import CompiledNetwork
from .fusion import fuse
from .graph import Graph
from .onnx_import import import_model
from .tasks import make_tasks


class Network:
    """An imported model, fused into tasks."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.groups = fuse(graph)
        self.tasks, self.steps = make_tasks(graph, self.groups)

    @classmethod
    def from_onnx(cls, model: Any, shapes: Mapping[str, Sequence[int]] | None = None) -> Network:
        """Import an ONNX model (a path or a ModelProto); ``shapes`` fixes dynamic inputs."""
        return cls(import_model(model, shapes))

    @property
    def input_names(self) -> list[str]:
        return list(self.graph.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.graph.outputs)

    def task_table(self) -> str:
        """One line per task: weight, GFLOP per call, name, hash."""
        rows = [f"{'#':>3} {'weight':>6} {'MFLOP':>9}  name (hash)"]
        for k, t in enumerate(self.tasks):
            rows.append(f"{k:>3} {t.weight:>6} {t.flops / 1e6:>9.2f}  {t.name} ({t.hash})")
        return "\n".join(rows)

    def compile(self, *, schedule: str = "naive", seed: int = 0) -> CompiledNetwork:
        """The network as one callable on numpy arrays (see :mod:`.compiled`)."""
        return CompiledNetwork(self, schedule=schedule, seed=seed)


def load_onnx(model: Any, shapes: Mapping[str, Sequence[int]] | None = None) -> Network:
    """``ps.load_onnx(path)``: the model as a :class:`Network` (``.tasks``, ``.compile()``)."""
    return Network.from_onnx(model, shapes)
