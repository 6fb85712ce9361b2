"""Transfer across targets (Moses): a cost model fitted on one target's records adapts to
another target from a few of that target's records.

The source is a GBDT (:class:`~.cost_model.GBDTModel`) fitted on a pretrained set measured
on the source target (the shipped Zen 3 set, or one ``probsched dataset --target`` wrote).
What changes from one target to another (vector width, registers, which loop to vectorize,
how far to unroll) shifts the throughput of some schedules but leaves most of the ranking
(tiling for the caches, parallelism, the order of loops) as it was. So the destination's
records do not retrain the model: they correct it. :class:`TransferModel` scores a candidate
by the source model's score plus a small second GBDT fitted on the destination records'
residuals (their normalized throughput, recomputed per workload as records come, minus the
source model's prediction for them): boosting continued from the source model on the
destination's data, with few, shallow, strongly regularized trees because the residual
model learns from tens of records, not thousands. How much of the correction is added (0,
a quarter, half or all of it) is chosen at each fit by cross-validation on the destination
records, by workload: a correction that does not carry over to a workload it was not
fitted on gets weight 0, and the model stays the source model.

With no destination record it is the source model exactly; below
``TransferConfig.min_records`` it still is (a correction fitted on a handful of records
moves the ranking more by noise than by signal). ``probsched bench --suite transfer``
measures it against a model trained from scratch on the destination's records and against
the prior weighting of :class:`~.cost_model.GBDTModel` (the source rows as a prior), on
destination workloads held out; docs/costmodel.md says how to use it
(``ps.tune(..., pretrained=SET, transfer=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..schedule.trace import Trace
from .cost_model import (
    GBDTConfig,
    GBDTModel,
    ProgramsOrFeatures,
    normalized_throughput,
    pairwise_accuracy,
)
from .pretrained import PretrainedSet

__all__ = ["TransferConfig", "TransferModel", "source_model"]


@dataclass(frozen=True)
class TransferConfig:
    """The residual model's settings (``HistGradientBoostingRegressor``'s) and
    ``min_records``: destination records needed before it is fitted; ``retrain_growth``:
    refit when they grew by this fraction since the last fit."""

    min_records: int = 8
    retrain_growth: float = 0.2
    max_iter: int = 30
    learning_rate: float = 0.05
    max_leaf_nodes: int = 7
    min_samples_leaf: int = 4
    l2_regularization: float = 4.0
    threads: int = 1
    seed: int = 0
    residual_features: str = "all"
    shrinkages: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    cv_folds: int = 3


TARGET_FEATURES = ("vec_", "unroll_", "innermost_extent", "inner_bytes", "inner_lines")
"""What the ``"target"`` residual features are: the program-row columns (sum, max and
heaviest store) whose names hold one of these, i.e. how the code meets the vector unit and
the registers, which is what differs between two CPUs' code; the rest (tiling for the
caches, parallelism, sizes) transfers as it is."""


def residual_columns(which: str) -> np.ndarray | None:
    """The row columns the residual model may split on: None for ``"all"``, else the
    indices of the ``"target"`` features (:data:`TARGET_FEATURES`)."""
    from .pretrained import feature_names

    if which == "all":
        return None
    if which != "target":
        raise DatasetError(f"transfer: residual_features must be 'all' or 'target', got "
                           f"{which!r}")
    names = feature_names()
    return np.array([k for k, n in enumerate(names) if not n.startswith(("p", "count_"))
                     and any(t in n for t in TARGET_FEATURES)])


def source_model(source: PretrainedSet | tuple[np.ndarray, np.ndarray],
                 config: GBDTConfig | None = None, *, seed: int | None = None) -> GBDTModel:
    """A GBDT fitted on a source target's rows and labels (a pretrained set, or the pair)."""
    if isinstance(source, PretrainedSet):
        rows, labels = source.rows, source.labels
    else:
        rows, labels = source
    model = GBDTModel(config, seed=seed, prior=(rows, labels))
    model.fit()
    return model


class TransferModel:
    """A source target's GBDT corrected by a residual GBDT on the destination's records
    (see the module docstring); a :class:`~.cost_model.CostModel`."""

    def __init__(self, source: GBDTModel | PretrainedSet, config: TransferConfig | None = None,
                 *, seed: int | None = None):
        self.config = config or TransferConfig()
        self.source = source if isinstance(source, GBDTModel) else source_model(source)
        if not self.source.fitted:
            raise DatasetError("transfer: the source model has not been fitted (give it "
                               "a prior, a pretrained set of the source target, or records)")
        self._seed = self.config.seed if seed is None else seed
        self._rows: list[np.ndarray] = []
        self._latencies: list[float] = []
        self._keys: list[str] = []
        self._residual: Any = None
        self._columns: np.ndarray | None = None
        self.shrinkage = 0.0  # the weight of the residual model's correction
        self._fitted_on = 0
        self._allowed = residual_columns(self.config.residual_features)

    @property
    def n_records(self) -> int:
        """Destination records learned from."""
        return len(self._latencies)

    @property
    def adapted(self) -> bool:
        """Whether a residual model is fitted (else the scores are the source model's)."""
        return self._residual is not None

    def rows(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None
             ) -> np.ndarray:
        return self.source.rows(programs_or_features, traces)

    def update(self, programs_or_features: ProgramsOrFeatures, traces: Sequence[Trace] | None,
               latencies_s: Sequence[float], workload_key: str) -> None:
        """Learn from measured destination candidates (failed ones: latency inf or nan)."""
        self.add_rows(self.rows(programs_or_features, traces), latencies_s,
                      [workload_key] * len(latencies_s))

    def add_rows(self, rows: np.ndarray, latencies_s: Sequence[float],
                 workload_keys: Sequence[str]) -> None:
        """Learn from destination records given as rows (:meth:`rows`, or a set's), with a
        workload key each (labels are normalized within a key)."""
        rows = np.asarray(rows, dtype=np.float32)
        if not (len(rows) == len(latencies_s) == len(workload_keys)):
            raise ValueError(f"{len(rows)} rows, {len(latencies_s)} latencies and "
                             f"{len(workload_keys)} workload keys")
        self._rows.extend(rows)
        self._latencies.extend(float(x) for x in latencies_s)
        self._keys.extend(str(k) for k in workload_keys)
        n, c = self.n_records, self.config
        grown = n >= self._fitted_on * (1 + c.retrain_growth)
        if n >= c.min_records and (self._fitted_on == 0 or grown):
            self.fit()  # a fit that chose no correction counts: the next waits for growth

    def fit(self) -> None:
        """Fit the residual model on every destination record now, and choose how much of
        it to add (``shrinkage``, by cross-validation); none below ``min_records``: the
        scores stay the source model's."""
        c = self.config
        self._residual, self._columns, self.shrinkage = None, None, 0.0
        if self.n_records < max(1, c.min_records):
            return
        x = np.stack(self._rows)
        keys = np.array(self._keys)
        y = normalized_throughput(np.array(self._latencies), keys)
        base = self.source.predict_rows(x)
        self._fitted_on = self.n_records
        weight = self._cross_validated(x, y, base, keys)
        if weight > 0:
            self._residual, self._columns = self._fit_residual(x, y, base, keys)
            self.shrinkage = weight if self._residual is not None else 0.0

    def _fit_residual(self, x: np.ndarray, y: np.ndarray, base: np.ndarray, keys: np.ndarray
                      ) -> tuple[Any, np.ndarray | None]:
        """A GBDT on the residuals ``y - base``, each workload's mean taken out (an offset
        says nothing of a ranking within it); None when no column varies."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        c = self.config
        residual = y - base
        for key in np.unique(keys):
            residual[keys == key] -= residual[keys == key].mean()
        columns = np.flatnonzero(x.min(axis=0) != x.max(axis=0))
        if self._allowed is not None:
            columns = np.intersect1d(columns, self._allowed)
        if not len(columns):
            return None, None
        model = HistGradientBoostingRegressor(
            max_iter=c.max_iter, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
            min_samples_leaf=c.min_samples_leaf, l2_regularization=c.l2_regularization,
            early_stopping=False, random_state=self._seed)
        with threadpool_limits(c.threads, user_api="openmp"):
            model.fit(x[:, columns], residual)
        return model, columns

    def _cross_validated(self, x: np.ndarray, y: np.ndarray, base: np.ndarray,
                         keys: np.ndarray) -> float:
        """The ``shrinkages`` weight of the correction that ranks held-out destination
        records best (pairwise, within each workload), the smallest on a tie: folds by
        workload when the records have several (will a correction learned on some
        workloads help on another?), else by record. One weight given: that one."""
        from threadpoolctl import threadpool_limits

        c = self.config
        if len(c.shrinkages) == 1:
            return float(c.shrinkages[0])
        names = np.unique(keys)
        rng = np.random.default_rng(self._seed)
        if len(names) >= 2:
            fold_of = dict(zip(rng.permutation(names), np.arange(len(names)) % c.cv_folds,
                               strict=True))
            fold = np.array([fold_of[k] for k in keys])
        else:
            fold = rng.permutation(len(keys)) % c.cv_folds
        scores = np.zeros(len(c.shrinkages))
        for f in np.unique(fold):
            train, test = fold != f, fold == f
            model, cols = self._fit_residual(x[train], y[train], base[train], keys[train])
            if model is None or cols is None:
                continue
            with threadpool_limits(c.threads, user_api="openmp"):
                corr = model.predict(x[test][:, cols])
            for k, w in enumerate(c.shrinkages):
                pred = base[test] + w * corr
                scores[k] += np.nansum([pairwise_accuracy(pred[keys[test] == key],
                                                          y[test][keys[test] == key])
                                        for key in np.unique(keys[test])])
        return float(c.shrinkages[int(np.argmax(scores))])  # argmax: the first of a tie

    def predict(self, programs: ProgramsOrFeatures, traces: Sequence[Trace] | None
                ) -> np.ndarray:
        """A score per candidate; higher is better."""
        return self.predict_rows(self.rows(programs, traces))

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Scores of rows made already: the source model's, plus the residual model's."""
        rows = np.asarray(rows, dtype=np.float32)
        base = self.source.predict_rows(rows)
        if self._residual is None or not len(rows):
            return base
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.config.threads, user_api="openmp"):
            return base + self.shrinkage * self._residual.predict(rows[:, self._columns])
