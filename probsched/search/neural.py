"""What the neural cost models share (:mod:`.gnn_model`, :mod:`.tlp_model`; PyTorch, the
``dl`` extra): the records kept, when to fit, the training loop, the scores.

A :class:`NeuralModel` is a :class:`~.cost_model.CostModel` as the GBDT is: it keeps every
record it learns from (the model's own encoding of the candidate, the latency, the workload
key), labels them by normalized throughput within their workload at each fit, returns seeded
random scores until ``min_records`` records exist and refits, from scratch and from its seed,
when the records have grown by ``retrain_growth`` (a fit depends only on the records and the
seed; nothing is written to disk: the records are the state).

The loss. TLP's: a ranking loss within a workload (LambdaRank's pairwise form): for the pairs
of one minibatch of the same workload whose labels differ, ``softplus(-(s_better - s_worse))``
weighted by the label gap, so that ordering the fast candidates matters most and the scores
need not match the labels' scale. Minibatches are made of a few workloads' chunks so that
each has pairs. ``loss="mse"`` regresses the labels instead. Inputs are standardized with
the training data's means and deviations. Adam with weight decay; a fit takes
``epochs x minibatches per epoch`` steps, at least ``min_steps`` and at most ``max_steps`` (so
that a fit on many records stays within a search round's time).

Torch's threads: ``threads`` per fit and prediction (the machine's setting restored after;
one by default: on a small shared machine a second thread mostly waits for a core).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ResourceError
from ..schedule.trace import Trace
from .cost_model import normalized_throughput

__all__ = ["NEURAL_MODELS", "NeuralConfig", "NeuralModel", "require_torch", "torch_missing"]

NEURAL_MODELS = ("gnn", "tlp")


def torch_missing() -> str | None:
    """Why the neural cost models cannot run here (None: they can)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"PyTorch is not installed ({exc})"
    return None


def require_torch(model: str) -> Any:
    """The ``torch`` module, or a :class:`~probsched.errors.ResourceError` naming the extra
    that ``model`` (e.g. ``"gnn"``) needs."""
    why = torch_missing()
    if why is not None:
        raise ResourceError(f"the {model!r} cost model needs PyTorch, the 'dl' extra: "
                            f"pip install 'probsched[dl]' ({why}); the default cost model, "
                            "'gbdt', does not")
    import torch

    return torch


@dataclass(frozen=True)
class NeuralConfig:
    """``min_records``: random scores below this many records; ``retrain_growth``: refit when
    the records grew by this fraction; ``hidden``: the width of the network's layers;
    ``rounds``: message-passing rounds (GNN) or transformer layers (TLP); ``epochs`` /
    ``min_steps`` / ``max_steps`` / ``batch``: the fit's length and minibatch (candidates);
    ``chunk``: the candidates of one workload placed together in a minibatch; ``loss``:
    "rank" or "mse"; ``threads``: torch's threads."""

    min_records: int = 64
    retrain_growth: float = 0.2
    hidden: int = 32
    rounds: int = 2
    epochs: int = 30
    min_steps: int = 150
    max_steps: int = 400
    batch: int = 256
    chunk: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    loss: str = "rank"
    threads: int = 1
    seed: int = 0


@contextlib.contextmanager
def torch_threads(torch: Any, n: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NeuralModel:
    """The shared part of the neural cost models: a subclass says how candidates are encoded
    (:meth:`encode`), batched (:meth:`collate`), standardized (:meth:`statistics`) and which
    network scores a batch (:meth:`network`)."""

    name = "neural"
    scoring_block = 4096  # candidates per batch when scoring

    def __init__(self, config: NeuralConfig | None = None, *, seed: int | None = None):
        self.config = config or NeuralConfig()
        if self.config.loss not in ("rank", "mse"):
            raise ValueError(f"loss must be 'rank' or 'mse', got {self.config.loss!r}")
        self.torch = require_torch(self.name)
        self._seed = self.config.seed if seed is None else seed
        self.rng = np.random.default_rng(self._seed)
        self._items: list[Any] = []
        self._latencies: list[float] = []
        self._keys: list[str] = []
        self._net: Any = None
        self._fitted_on = 0

    # ------------------------------------------------------------ what a subclass gives

    def encode(self, programs_or_features: Sequence[Any], traces: Sequence[Trace] | None
               ) -> list[Any]:
        """The model's input, one item per candidate."""
        raise NotImplementedError

    def collate(self, items: Sequence[Any]) -> tuple:
        """Items as the network's arguments (tensors)."""
        raise NotImplementedError

    def size(self, item: Any) -> int:
        """How big an item is to the network (a batch pads its items to its largest);
        :meth:`predict_items` scores items of similar sizes together."""
        return 0

    def statistics(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        """Means and deviations of the inputs, for :meth:`network`."""
        raise NotImplementedError

    def network(self, stats: dict[str, np.ndarray]) -> Any:
        """A fresh ``torch.nn.Module`` scoring a collated batch (one score per candidate)."""
        raise NotImplementedError

    # ------------------------------------------------------------ the CostModel protocol

    @property
    def n_records(self) -> int:
        return len(self._latencies)

    @property
    def fitted(self) -> bool:
        return self._net is not None

    def add(self, programs_or_features: Sequence[Any], traces: Sequence[Trace] | None,
            latencies_s: Sequence[float], workload_key: str) -> None:
        """Keep records without fitting (:meth:`fit` fits on all of them)."""
        lat = [float(x) for x in latencies_s]
        items = self.encode(programs_or_features, traces)
        if len(items) != len(lat):
            raise ValueError(f"{len(items)} candidates but {len(lat)} latencies")
        self._items.extend(items)
        self._latencies.extend(lat)
        self._keys.extend([workload_key] * len(lat))

    def update(self, programs_or_features: Sequence[Any], traces: Sequence[Trace] | None,
               latencies_s: Sequence[float], workload_key: str) -> None:
        """Learn from measured candidates (failed ones: latency inf or nan)."""
        self.add(programs_or_features, traces, latencies_s, workload_key)
        n = self.n_records
        grown = n >= self._fitted_on * (1 + self.config.retrain_growth)
        if n >= self.config.min_records and (not self.fitted or grown):
            self.fit()

    def predict(self, programs: Sequence[Any], traces: Sequence[Trace] | None) -> np.ndarray:
        """A score per candidate; higher is better (seeded random before the first fit)."""
        if self._net is None:
            return self.rng.random(len(programs))
        return self.predict_items(self.encode(programs, traces))

    def predict_items(self, items: Sequence[Any], block: int | None = None) -> np.ndarray:
        """Scores of encoded candidates (:meth:`encode`), ``block`` at a time (default
        ``scoring_block``), those of similar :meth:`size` together."""
        if self._net is None:
            return self.rng.random(len(items))
        torch = self.torch
        block = block or self.scoring_block
        order = np.argsort([self.size(x) for x in items], kind="stable")
        out = np.zeros(len(items))
        with torch_threads(torch, self.config.threads), torch.inference_mode():
            for start in range(0, len(items), block):
                mine = order[start:start + block]
                out[mine] = self._net(*self.collate([items[k] for k in mine])).double().numpy()
        return out

    # ------------------------------------------------------------ fitting

    def fit(self) -> None:
        """Fit a fresh network on all records now (from the seed)."""
        torch = self.torch
        c = self.config
        keys = np.array(self._keys)
        labels = normalized_throughput(np.array(self._latencies), keys)
        _, group = np.unique(keys, return_inverse=True)
        with torch_threads(torch, c.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            net = self.network(self.statistics(self._items))
            opt = torch.optim.Adam(net.parameters(), lr=c.learning_rate,
                                   weight_decay=c.weight_decay)
            rng = np.random.default_rng(self._seed)
            steps = 0
            per_epoch = max(1, math.ceil(len(labels) / c.batch))
            total = min(max(c.epochs * per_epoch, c.min_steps), c.max_steps)
            net.train()
            while steps < total:
                for idx in _minibatches(group, c.batch, c.chunk, rng):
                    scores = net(*self.collate([self._items[k] for k in idx]))
                    loss = self._loss(scores, torch.as_tensor(labels[idx], dtype=torch.float32),
                                      torch.as_tensor(group[idx]))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    steps += 1
                    if steps >= total:
                        break
            net.eval()
        self._net = net
        self._fitted_on = self.n_records

    def _loss(self, scores: Any, labels: Any, group: Any) -> Any:
        torch = self.torch
        if self.config.loss == "mse":
            return torch.mean((scores - labels) ** 2)
        gap = labels[:, None] - labels[None, :]
        pairs = (group[:, None] == group[None, :]) & (gap > 0)
        weight = torch.where(pairs, gap, torch.zeros_like(gap))
        total = weight.sum()
        if float(total) <= 0:  # no ordered pair: keep the scores near the labels
            return torch.mean((scores - labels) ** 2)
        diff = scores[:, None] - scores[None, :]
        return (torch.nn.functional.softplus(-diff) * weight).sum() / total


def _minibatches(group: np.ndarray, batch: int, chunk: int, rng: np.random.Generator
                 ) -> Iterator[np.ndarray]:
    """One epoch: every record once, in minibatches of about ``batch`` made of chunks of
    up to ``chunk`` records of one workload (shuffled within and across workloads)."""
    pieces = []
    for g in np.unique(group):
        members = rng.permutation(np.flatnonzero(group == g))
        pieces += [members[k:k + chunk] for k in range(0, len(members), chunk)]
    order = rng.permutation(len(pieces))
    current: list[np.ndarray] = []
    size = 0
    for p in order:
        current.append(pieces[p])
        size += len(pieces[p])
        if size >= batch:
            yield np.concatenate(current)
            current, size = [], 0
    if current:
        yield np.concatenate(current)
