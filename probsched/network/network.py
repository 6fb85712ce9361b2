"""A whole model: its graph (in the layout chosen: :mod:`.layout`), fused groups, distinct
tasks (each a Workload with a weight and a structural hash) and the steps that run them;
``compile()`` makes it callable."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..search.database import Database, TuningDatabase
from .compiled import CompiledNetwork
from .fusion import fuse
from .graph import Graph
from .layout import apply_layout
from .onnx_import import import_model
from .tasks import make_tasks
from .tuning import NetworkTuneResult, tune_network

if TYPE_CHECKING:
    from .latency import Assignment, LatencyPrediction, LatencyPredictor

DEFAULT_LAYOUT = "nhwc"


class Network:
    """An imported model, its layout chosen (``layout``: "nhwc", convolutions and the ops
    between them channels-last, NCHW at the edges; "nchw", ONNX's layout throughout), fused
    into tasks. The tasks of one layout are other workloads than the other's, so a tuning
    database's records for one are not used by the other."""

    def __init__(self, graph: Graph, layout: str = DEFAULT_LAYOUT):
        self.layout = layout
        self.graph = apply_layout(graph, layout)
        self.groups = fuse(self.graph)
        self.tasks, self.steps = make_tasks(self.graph, self.groups)
        self._db: str | os.PathLike[str] | TuningDatabase | None = None

    @classmethod
    def from_onnx(cls, model: Any, shapes: Mapping[str, Sequence[int]] | None = None, *,
                  layout: str = DEFAULT_LAYOUT) -> Network:
        """Import an ONNX model (a path or a ModelProto); ``shapes`` fixes dynamic inputs."""
        return cls(import_model(model, shapes), layout)

    @property
    def name(self) -> str:
        """The model's name (its file's stem, else its ONNX graph's name)."""
        return self.graph.name

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

    def tune(self, trials: int = 2000, db: str | os.PathLike[str] | TuningDatabase | None
             = "runs.db", strategy: str = "gradient", seed: int = 0, progress: bool = True,
             **options: Any) -> NetworkTuneResult:
        """Tune the tasks for ``trials`` new trials in all, ``strategy`` ("gradient",
        "round-robin" or "ucb") choosing the task of each round; every record goes to
        ``db`` (None: in memory), which :meth:`compile` then reads (see :mod:`.tuning`;
        ``options``: ``target``, ``round_size``, ``callbacks``, ``out``)."""
        if db is None:
            db = Database(":memory:")
        self._db = db
        return tune_network(self, trials, db, strategy, seed, progress, **options)

    def compile(self, *, schedule: str | None = None, seed: int = 0,
                db: str | os.PathLike[str] | TuningDatabase | None = None) -> CompiledNetwork:
        """The network as one callable on numpy arrays (see :mod:`.compiled`). With a
        database (``db``, or the one the last :meth:`tune` wrote) the default schedule is
        "tuned": each task's best correct record, else its plain lowering; without one,
        "naive"."""
        db = db if db is not None else self._db
        schedule = schedule or ("tuned" if db is not None else "naive")
        if schedule != "tuned" or not isinstance(db, str | os.PathLike):
            return CompiledNetwork(self, schedule=schedule, seed=seed,
                                   db=None if isinstance(db, str | os.PathLike) else db)
        with Database(db, readonly=True) as opened:
            return CompiledNetwork(self, schedule=schedule, seed=seed, db=opened)

    def compile_assignment(self, assignment: Assignment) -> CompiledNetwork:
        """The network compiled with one schedule per task (task hash -> trace, None: the
        plain lowering; see :mod:`.latency`)."""
        from .latency import compile_assignment

        return compile_assignment(self, assignment)

    def predict_latency(self, assignment: Assignment, predictor: LatencyPredictor
                        ) -> LatencyPrediction:
        """The end-to-end latency of ``assignment`` predicted by ``predictor`` before
        anything is compiled or measured (see :mod:`.latency`)."""
        return predictor.predict(self, assignment)


def load_onnx(model: Any, shapes: Mapping[str, Sequence[int]] | None = None, *,
              layout: str = DEFAULT_LAYOUT) -> Network:
    """``ps.load_onnx(path)``: the model as a :class:`Network` (``.tasks``, ``.compile()``)
    in ``layout`` ("nhwc" or "nchw", see :class:`Network`)."""
    return Network.from_onnx(model, shapes, layout=layout)
