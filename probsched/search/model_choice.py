"""Choosing a cost model by name: ``tune(cost_model=..., pretrained=..., transfer=...)`` and
``probsched tune --cost-model``.

>>> type(make_cost_model("random", seed=0, batch=32)).__name__
'RandomModel'
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import replace
from typing import Any

from ..errors import ProbschedError
from .cost_model import CostModel, GBDTConfig, GBDTModel, RandomModel
from .gnn_model import GNN_CONFIG, GNNModel
from .neural import NEURAL_MODELS, NeuralModel, require_torch
from .pretrained import PretrainedSet
from .pretrained import resolve as resolve_pretrained
from .tlp_model import TLP_CONFIG, TLPModel
from .transfer import TransferModel, source_model

__all__ = ["COST_MODELS", "PretrainedArg", "make_cost_model", "neural_cost_model"]

PretrainedArg = bool | str | os.PathLike[str] | PretrainedSet | None


def neural_cost_model(name: str, seed: int = 0, **config: Any) -> NeuralModel:
    """The neural cost model ``name`` (``"gnn"`` or ``"tlp"``) with its default configuration
    and ``config``'s fields; a :class:`~probsched.errors.ResourceError` without PyTorch."""
    require_torch(name)
    if name == "gnn":
        return GNNModel(replace(GNN_CONFIG, **config), seed=seed)
    if name == "tlp":
        return TLPModel(replace(TLP_CONFIG, **config), seed=seed)
    raise ProbschedError(f"unknown neural cost model {name!r}; known: "
                         f"{', '.join(NEURAL_MODELS)}")


def make_cost_model(cost_model: str | CostModel, seed: int, batch: int,
                    pretrained: PretrainedArg = None, transfer: bool = False) -> CostModel:
    """``"gbdt"`` (learning from one round's worth of records on, or from the first round
    with ``pretrained``: a pretrained set as :func:`.pretrained.resolve` takes it; with
    ``transfer`` too, the set's GBDT adapted by a residual model, :mod:`.transfer`),
    ``"random"``, ``"gnn"`` or ``"tlp"`` (PyTorch, the ``dl`` extra: :mod:`.neural`) or a
    model."""
    prior = resolve_pretrained(pretrained)
    if transfer and prior is None:
        raise ProbschedError("transfer: give the other target's set as pretrained= (a path "
                             "or a PretrainedSet; True: the shipped one)")
    if prior is not None and cost_model != "gbdt":
        raise ProbschedError(f"a pretrained set is for the gbdt cost model, not "
                             f"{cost_model if isinstance(cost_model, str) else 'a given one'}")
    if cost_model == "gbdt":
        threading.Thread(target=importlib.import_module, args=("sklearn.ensemble",),
                         daemon=True).start()  # scikit-learn's ~1 s import overlaps a batch
        if transfer and prior is not None:
            return TransferModel(source_model(prior, seed=seed), seed=seed)
        return GBDTModel(GBDTConfig(min_records=min(64, batch)), seed=seed,
                         prior=None if prior is None else (prior.rows, prior.labels))
    if cost_model == "random":
        return RandomModel(seed=seed)
    if cost_model in NEURAL_MODELS:
        return neural_cost_model(cost_model, seed, min_records=min(64, batch))
    if isinstance(cost_model, str):
        raise ProbschedError(f"unknown cost model {cost_model!r}; known: "
                             f"{', '.join(COST_MODELS)}")
    return cost_model


COST_MODELS = ("gbdt", "random", *NEURAL_MODELS)
"""The cost models by name: ``tune(cost_model=...)``, ``probsched tune --cost-model``."""
