"""Cost models: rank candidate schedules before measuring them.

A :class:`CostModel` learns from measured records (``update``) and scores candidates
(``predict``, higher is better). Two are here: :class:`GBDTModel`, scikit-learn gradient
boosting on program and trace features, and :class:`RandomModel`, uniform random scores, the
baseline any model must beat.

What the GBDT learns. The label is the normalized throughput of a record within its workload:
best latency seen for that workload / the record's latency, in [0, 1]; failed records (no
latency) get 0. Labels are recomputed at every fit, since the best changes as data comes in.

One row per program, not per store. Ansor and MetaSchedule give each store a score and train
on the sum with a custom XGBoost objective; scikit-learn has no grouped objective, and
spreading a program's label over its stores would teach every store of a slow program that it
is slow, the cheap init alike. So the program's stores are combined into a fixed-length row:
the sum over stores (taken in the original scale, then log-scaled again: total flops, total
bytes, how many stores are vectorized...), the max over stores, and the whole row of the
heaviest store (most flops, then most iterations: the main computation, whose vectorization,
strides and reuse dominate the time), plus the number of stores; then the trace features
(``trace_features``), which carry the decisions directly. Per-store contributions are thus
combined before learning rather than after, and the model sees the bottleneck store in full.
The regressor is ``HistGradientBoostingRegressor`` (squared error; small, fast, deterministic
with a fixed ``random_state``, no early stopping, so a fit depends only on the data).

Until ``min_records`` records exist the model returns seeded random scores (a model fitted on
a handful of records ranks worse than chance often enough), unless it has a prior: rows and
labels of other workloads (a pretrained set, :mod:`.pretrained`), which it fits on from the
first prediction, with the workload's own records as they come, weighted: with ``n`` own
records the prior's rows weigh ``prior_half / (prior_half + n)`` of the whole and the own
records the rest (all prior at the start, half at ``prior_half`` own records, a fifth at four
times that). It refits when the data has grown
by ``retrain_growth`` since the last fit. Fitted models are never written to disk: the
records are the state, and the model retrains from them (e.g. from the database on resume).

Ranking metrics for held-out records: :func:`pairwise_accuracy` and :func:`top_k_score`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DatasetError
from ..ir.program import Program
from ..schedule.trace import Trace
from . import features as F
from .trace_features import MAX_LEN, extract_trace, n_trace_features

ProgramsOrFeatures = Sequence[Program] | Sequence[np.ndarray]

__all__ = [
    "CostModel", "GBDTConfig", "GBDTModel", "RandomModel", "normalized_throughput",
    "add_ranking", "pairwise_accuracy", "program_rows", "ranking_by_group", "top_k_score",
]


@runtime_checkable
class CostModel(Protocol):
    def update(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None,
               latencies_s: Sequence[float], workload_key: str) -> None:
        """Learn from measured candidates (failed ones: latency inf or nan)."""

    def predict(self, programs: ProgramsOrFeatures, traces: Sequence[Trace] | None
                ) -> np.ndarray:
        """A score per candidate; higher is better."""


# ---------------------------------------------------------------- rows


_FLOPS = F.FEATURE_NAMES.index("flops")
_ITERS = F.FEATURE_NAMES.index("iterations")
ROW_WIDTH = 3 * F.N_FEATURES + 1


def _unlog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * (np.exp2(np.abs(x)) - 1.0)


def _relog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log2(1.0 + np.abs(x))


def program_row(stores: np.ndarray) -> np.ndarray:
    """One program's per-store features (``features.extract``) as one fixed-length row: sum
    over stores, max over stores, the heaviest store's row, the number of stores."""
    out = np.zeros(ROW_WIDTH, dtype=np.float32)
    if stores.shape[0] == 0:
        return out
    x = stores.astype(np.float64)
    n = F.N_FEATURES
    out[:n] = _relog(_unlog(x).sum(axis=0))
    out[n:2 * n] = x.max(axis=0)
    heavy = max(range(x.shape[0]), key=lambda r: (x[r, _FLOPS], x[r, _ITERS], -r))
    out[2 * n:3 * n] = x[heavy]
    out[-1] = math.log2(1 + x.shape[0])
    return out


def program_rows(programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None,
                 *, use_traces: bool = True, trace_len: int = MAX_LEN) -> np.ndarray:
    """The model's input: a row per candidate (program row, then trace features; trace
    features are zeros when ``traces`` is None)."""
    items = list(programs_or_features)
    stores = [F.program_features(x) if isinstance(x, Program) else np.asarray(x)
              for x in items]
    rows = np.stack([program_row(s) for s in stores]) if stores else \
        np.zeros((0, ROW_WIDTH), dtype=np.float32)
    if not use_traces:
        return rows
    if traces is None:
        tr = np.zeros((len(items), n_trace_features(trace_len)), dtype=np.float32)
    else:
        if len(traces) != len(items):
            raise ValueError(f"{len(items)} programs but {len(traces)} traces")
        tr = extract_trace(traces, trace_len)
    return np.hstack([rows, tr])


def normalized_throughput(latencies_s: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per workload key: best latency / latency, in [0, 1]; failed (inf, nan, <= 0) -> 0."""
    lat = np.asarray(latencies_s, dtype=np.float64)
    ok = np.isfinite(lat) & (lat > 0)
    y = np.zeros(len(lat))
    for key in np.unique(keys):
        m = (keys == key) & ok
        if m.any():
            y[m] = lat[m].min() / lat[m]
    return y


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class GBDTConfig:
    """``min_records``: random scores below this many records; ``retrain_growth``: refit when
    the records grew by this fraction since the last fit; ``threads``: OpenMP threads of a
    fit (one: on a small shared machine more threads mostly spin); the rest goes to
    ``HistGradientBoostingRegressor``; ``prior_half``: the own records at which a prior
    (pretrained rows) weighs as much as they do."""

    min_records: int = 64
    retrain_growth: float = 0.2
    use_trace_features: bool = True
    trace_len: int = MAX_LEN
    max_iter: int = 80
    learning_rate: float = 0.15
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 5
    l2_regularization: float = 1.0
    threads: int = 1
    seed: int = 0
    prior_half: int = 128


class GBDTModel:
    """Gradient-boosted trees on program + trace rows, trained on normalized throughput."""

    def __init__(self, config: GBDTConfig | None = None, *, seed: int | None = None,
                 prior: tuple[np.ndarray, np.ndarray] | None = None):
        self.config = config or GBDTConfig()
        self._prior = None if prior is None else _check_prior(prior, self.config)
        seed = self.config.seed if seed is None else seed
        self.rng = np.random.default_rng(seed)
        self._seed = seed
        self._rows: list[np.ndarray] = []
        self._latencies: list[float] = []
        self._keys: list[str] = []
        self._model = None
        self._columns: np.ndarray | None = None  # columns not constant in the training data
        self._fitted_on = 0

    @property
    def n_records(self) -> int:
        return len(self._latencies)

    @property
    def fitted(self) -> bool:
        return self._model is not None

    def rows(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None
             ) -> np.ndarray:
        c = self.config
        return program_rows(programs_or_features, traces, use_traces=c.use_trace_features,
                            trace_len=c.trace_len)

    def update(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None,
               latencies_s: Sequence[float], workload_key: str) -> None:
        self.add_rows(self.rows(programs_or_features, traces), latencies_s,
                      [workload_key] * len(latencies_s))

    def add_rows(self, rows: np.ndarray, latencies_s: Sequence[float],
                 workload_keys: Sequence[str]) -> None:
        """:meth:`update` with rows made already (:meth:`rows`, or a pretrained set's) and a
        workload key per row."""
        lat = [float(x) for x in latencies_s]
        if not (len(rows) == len(lat) == len(workload_keys)):
            raise ValueError(f"{len(rows)} candidates, {len(lat)} latencies and "
                             f"{len(workload_keys)} workload keys")
        self._rows.extend(np.asarray(rows, dtype=np.float32))
        self._latencies.extend(lat)
        self._keys.extend(str(k) for k in workload_keys)
        n = self.n_records
        grown = n >= self._fitted_on * (1 + self.config.retrain_growth)
        enough = n >= self.config.min_records or self._prior is not None
        if enough and (not self.fitted or grown):
            self.fit()

    def fit(self) -> None:
        """Fit on all records now."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        c = self.config
        x, y, weight = self._training_data()
        # Most trace positions and many store features are constant within a space; dropping
        # them makes a fit several times faster and changes nothing the trees could split on.
        columns = np.flatnonzero(x.min(axis=0) != x.max(axis=0))
        model = HistGradientBoostingRegressor(
            max_iter=c.max_iter, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
            min_samples_leaf=c.min_samples_leaf, l2_regularization=c.l2_regularization,
            early_stopping=False, random_state=self._seed)
        with threadpool_limits(c.threads, user_api="openmp"):
            model.fit(x[:, columns], y, sample_weight=weight)
        self._model = model
        self._columns = columns
        self._fitted_on = self.n_records

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Rows, labels and weights (None: all equal) of a fit: own records, and the prior
        weighted as the module docstring says."""
        n = self.n_records
        own_y = normalized_throughput(np.array(self._latencies), np.array(self._keys))
        if self._prior is None:
            return np.stack(self._rows), own_y, None
        px, py = self._prior
        share = self.config.prior_half / (self.config.prior_half + n)
        total = len(py) + n
        weight = np.full(len(py), share * total / len(py))
        if not n:
            return px, py, weight
        own_x = np.stack(self._rows)
        weight = np.concatenate([weight, np.full(n, (1 - share) * total / n)])
        return np.vstack([px, own_x]), np.concatenate([py, own_y]), weight

    def predict(self, programs: ProgramsOrFeatures, traces: Sequence[Trace] | None
                ) -> np.ndarray:
        if not self.fitted and self._prior is None:
            return self.rng.random(len(programs))
        return self.predict_rows(self.rows(programs, traces))

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Scores of rows made already (:meth:`rows`, or a pretrained set's); seeded random
        ones until the model has enough records or a prior."""
        if self._model is None and self._prior is not None:
            self.fit()  # a prior: fitted from the first prediction on
        if self._model is None:
            return self.rng.random(len(rows))
        if len(rows) == 0:
            return np.zeros(0)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.config.threads, user_api="openmp"):
            return self._model.predict(np.asarray(rows)[:, self._columns])


def _check_prior(prior: tuple[np.ndarray, np.ndarray], config: GBDTConfig
                 ) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(prior[0], dtype=np.float32), np.asarray(prior[1], dtype=np.float64)
    width = ROW_WIDTH + (n_trace_features(config.trace_len) if config.use_trace_features else 0)
    if x.ndim != 2 or x.shape[1] != width or len(x) != len(y) or not len(y):
        raise DatasetError(f"a prior for the GBDT needs rows of {width} features and a label "
                           f"each; got rows of shape {x.shape} and {len(y)} labels (a "
                           "pretrained set has rows of the default row layout)")
    return x, y


class RandomModel:
    """Uniform random scores from a seeded generator; learns nothing."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def update(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None,
               latencies_s: Sequence[float], workload_key: str) -> None:
        pass

    def predict(self, programs: ProgramsOrFeatures, traces: Sequence[Trace] | None
                ) -> np.ndarray:
        return self.rng.random(len(programs))


# ---------------------------------------------------------------- ranking metrics


def pairwise_accuracy(pred: ArrayLike, true: ArrayLike) -> float:
    """Over the pairs whose true values differ, the fraction the prediction orders the same
    way (a tie in the prediction counts half). 0.5 is chance; nan with no such pair.

    >>> pairwise_accuracy([3, 2, 1], [0.9, 0.5, 0.1])
    1.0
    >>> pairwise_accuracy([1, 1, 1], [0.9, 0.5, 0.1])
    0.5
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ in shape")
    iu = np.triu_indices(len(t), k=1)
    dt = np.sign(t[:, None] - t[None, :])[iu]
    dp = np.sign(p[:, None] - p[None, :])[iu]
    mask = dt != 0
    if not mask.any():
        return math.nan
    score = np.where(dp[mask] == 0, 0.5, (dp[mask] == dt[mask]).astype(np.float64))
    return float(score.mean())


def top_k_score(pred: ArrayLike, true: ArrayLike, k: int) -> float:
    """TLP's top-k score: the best true throughput among the ``k`` candidates predicted best,
    divided by the best true throughput overall (1 = the best is among them; 0 when nothing
    has positive throughput).

    >>> top_k_score([0.1, 0.9, 0.5], [1.0, 0.2, 0.5], k=2)
    0.5
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and true {t.shape} differ in shape")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    best = t.max() if len(t) else 0.0
    if best <= 0:
        return 0.0
    order = np.argsort(-p, kind="stable")
    return float(t[order[:k]].max() / best)


def add_ranking(scores: dict[str, list[float]], pred: ArrayLike, true: ArrayLike,
                ks: Sequence[int] = (1, 5, 10)) -> None:
    """Append :func:`pairwise_accuracy` (``"pairwise_acc"``) and :func:`top_k_score` for each
    of ``ks`` (``"top1"``, ...) of ``pred`` against ``true`` to ``scores``' lists."""
    scores.setdefault("pairwise_acc", []).append(pairwise_accuracy(pred, true))
    for k in ks:
        scores.setdefault(f"top{k}", []).append(top_k_score(pred, true, k))


def ranking_by_group(pred: ArrayLike, true: ArrayLike, groups: ArrayLike,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """:func:`add_ranking` within each group of ``groups`` (e.g. each workload: labels are
    normalized within one), then per metric the mean over the groups (nan ones left out).

    >>> ranking_by_group([3, 2, 1, 0], [0.9, 0.5, 0.1, 0.8], ["a", "a", "b", "b"], ks=(1,))
    {'pairwise_acc': 0.5, 'top1': 0.5625}
    """
    p, t, g = np.asarray(pred), np.asarray(true), np.asarray(groups)
    scores: dict[str, list[float]] = {}
    for key in np.unique(g):
        mine = g == key
        add_ranking(scores, p[mine], t[mine], ks)
    return {k: float(np.nanmean(v)) for k, v in scores.items()}
