"""A sequence cost model over the trace's primitives (TLP's idea: the schedule, not the
program, is the input; PyTorch, the ``dl`` extra; ``tune(cost_model="tlp")``).

Each candidate is its trace as :func:`~.trace_features.trace_sequences` encodes it (lookups
left out; per instruction a one-hot of its kind and its numeric arguments and decisions, up to
``SEQ_LEN`` instructions; plus the counts per kind). The network: each instruction
standardized and embedded (a linear layer) plus a learned position embedding; ``rounds``
transformer encoder layers (2 heads of attention, a feed-forward layer twice as wide,
post-norm, no dropout), padding masked; the mean over the trace's instructions, with the
standardized counts, through a small MLP to the score. Candidates are scored in batches of similar
lengths (``scoring_block`` at a time), each padded to its longest trace.
Training, labels and the loss (TLP's ranking loss by default): :mod:`.neural`.

The programs the tuner hands in are not looked at: :meth:`TLPModel.featurize` makes the
feature cache keep nothing per program.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir.program import Program
from ..schedule.trace import Trace
from .neural import NeuralConfig, NeuralModel
from .trace_features import KINDS, STEP_WIDTH, trace_sequences

__all__ = ["SEQ_LEN", "TLP_CONFIG", "TLPModel"]

SEQ_LEN = 64
_HEADS = 2
_NK = len(KINDS) + 1
TLP_CONFIG = NeuralConfig(hidden=16, rounds=1)
"""TLP's defaults: 16 wide, one encoder layer (for the speed a search round needs)."""


class TLPModel(NeuralModel):
    """A transformer over the trace's instructions; see the module docstring."""

    name = "tlp"
    scoring_block = 256  # batches that stay in the caches, their traces of similar lengths

    def __init__(self, config: NeuralConfig | None = None, *, seed: int | None = None,
                 seq_len: int = SEQ_LEN):
        super().__init__(config or TLP_CONFIG, seed=seed)
        if self.config.hidden % _HEADS:
            raise ValueError(f"hidden must be a multiple of {_HEADS}, got {self.config.hidden}")
        self.seq_len = seq_len

    @staticmethod
    def featurize(program: Program) -> None:
        """Nothing per program: the model reads traces."""
        return None

    def encode(self, programs_or_features: Sequence[Any], traces: Sequence[Trace] | None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        if traces is None:
            raise ValueError("the tlp cost model needs the candidates' traces")
        if len(traces) != len(programs_or_features):
            raise ValueError(f"{len(programs_or_features)} candidates but {len(traces)} "
                             "traces")
        head, seq = trace_sequences(traces, self.seq_len)
        # each trace's instructions are a prefix of its rows (an empty trace keeps one zero
        # row to pool): kept cut to it, so that a batch pads only to its own longest
        count = np.maximum(1, (seq[:, :, :_NK].sum(axis=2) > 0).sum(axis=1))
        return [(head[k], seq[k, :count[k]]) for k in range(len(traces))]

    def size(self, item: tuple[np.ndarray, np.ndarray]) -> int:
        return len(item[1])

    def collate(self, items: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple:
        torch = self.torch
        head = np.stack([h for h, _ in items])
        length = max(len(s) for _, s in items)
        seq = np.zeros((len(items), length, STEP_WIDTH), dtype=np.float32)
        valid = np.zeros((len(items), length), dtype=bool)
        for k, (_, steps) in enumerate(items):
            seq[k, :len(steps)] = steps
            valid[k, :len(steps)] = True
        return torch.from_numpy(head), torch.from_numpy(seq), torch.from_numpy(valid)

    def statistics(self, items: Sequence[tuple[np.ndarray, np.ndarray]]
                   ) -> dict[str, np.ndarray]:
        head = np.stack([h for h, _ in items]).astype(np.float64)
        steps = np.concatenate([s for _, s in items]).astype(np.float64)
        steps = steps[steps[:, :_NK].sum(axis=1) > 0]
        if not len(steps):
            steps = np.zeros((1, STEP_WIDTH))

        def spread(x: np.ndarray) -> np.ndarray:
            s = x.std(axis=0)
            return np.where(s > 1e-6, s, 1.0)

        return {"head_mean": head.mean(axis=0), "head_std": spread(head),
                "step_mean": steps.mean(axis=0), "step_std": spread(steps)}

    def network(self, stats: dict[str, np.ndarray]) -> Any:
        return _network(self.torch, stats, self.config, self.seq_len)


def _network(torch: Any, stats: dict[str, np.ndarray], c: NeuralConfig, seq_len: int) -> Any:
    nn = torch.nn
    d = c.hidden

    class Layer(nn.Module):  # type: ignore[name-defined]  # torch: imported lazily
        """A post-norm transformer encoder layer; padding is masked out of the attention."""

        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)
            self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

        def forward(self, h, bias):
            n, length, _ = h.shape
            q, k, v = (t.view(n, length, _HEADS, d // _HEADS).transpose(1, 2)
                       for t in self.qkv(h).chunk(3, dim=2))
            # written out: torch's fused kernel is slower at these sizes (8-wide heads, up
            # to 64 positions) on a CPU
            weights = torch.softmax(q @ k.transpose(-1, -2) * (d // _HEADS) ** -0.5 + bias, -1)
            a = weights @ v
            h = self.norm1(h + self.out(a.transpose(1, 2).reshape(n, length, d)))
            return self.norm2(h + self.ff(h))

    class Sequence_(nn.Module):  # type: ignore[name-defined]  # torch: imported lazily
        def __init__(self) -> None:
            super().__init__()
            for name, value in stats.items():
                self.register_buffer(name, torch.tensor(value, dtype=torch.float32))
            self.embed = nn.Linear(STEP_WIDTH, d)
            self.position = nn.Parameter(torch.zeros(seq_len, d))
            self.layers = nn.ModuleList(Layer() for _ in range(c.rounds))
            self.head = nn.Sequential(nn.Linear(d + _NK + 1, d), nn.ReLU(), nn.Linear(d, 1))

        def forward(self, head, seq, valid):
            n, length, _ = seq.shape
            h = self.embed((seq - self.step_mean) / self.step_std) + self.position[:length]
            bias = torch.zeros(n, 1, 1, length).masked_fill(~valid[:, None, None, :], -1e9)
            for layer in self.layers:
                h = layer(h, bias)
            w = valid.to(h.dtype)[:, :, None]
            pooled = (h * w).sum(dim=1) / w.sum(dim=1)
            counts = (head - self.head_mean) / self.head_std
            return self.head(torch.cat([pooled, counts], dim=1)).squeeze(1)

    return Sequence_()
