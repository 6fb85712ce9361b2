"""What evolution and annealing share: the workload, space, cost model and features, the
database's measured decisions, the replays (:class:`~.candidates.CandidateMaker`), one
mutation of a candidate (retried ``replay_retries`` times), the model's scores, the stored
best records replayed, and ``stats`` and ``measured`` of the
:class:`~.strategy.SearchStrategy` protocol."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ir.compute import Workload
from ..measure import RunResult
from ..target import Target, resolve
from .candidates import CandidateMaker
from .cost_model import CostModel
from .database import TuningDatabase
from .features import FeatureCache
from .mutators import default_probs, propose
from .strategy import Candidate


class MutationSearch:
    """The base of :class:`~.evolutionary.EvolutionarySearch` and
    :class:`~.annealing.SimulatedAnnealing`; ``config`` has ``mutator_probs`` and
    ``replay_retries``. A subclass fills ``_own`` with its own counts."""

    def __init__(self, workload: Workload, space, model: CostModel, config, *, seed: int,
                 db: TuningDatabase | None, target: Target | None,
                 features: FeatureCache | None, maker: CandidateMaker | None):
        self.workload, self.space, self.model = workload, space, model
        self.features = features or FeatureCache()
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.db, self.target = db, resolve(target)
        self.measured_keys: set[str] = (
            set(db.measured_decisions(workload, target=self.target.key)) if db else set())
        self.maker = maker or CandidateMaker(workload, space, self.target, self.rng)
        self._probs = dict(config.mutator_probs or default_probs())
        self._own: dict = {}

    def _from_db(self, n: int) -> list[Candidate]:
        """The database's ``n`` best records, replayed (failing ones skipped)."""
        if self.db is None or n <= 0:
            return []
        out = []
        for rec in self.db.best(self.workload, n, target=self.target.key):
            cand = self.maker.make(rec.trace.decision_map)
            if cand is not None:
                out.append(cand)
        return out

    def _mutant(self, parent: Candidate) -> Candidate | None:
        """One mutation of ``parent``'s decisions, replayed; None when no mutation applies
        or none of ``replay_retries`` replays."""
        for _ in range(self.config.replay_retries):
            new = propose(parent.choices, self.rng, self._probs)
            if new is None:
                return None
            cand = self.maker.make(new)
            if cand is not None:
                return cand
        return None

    def scores(self, cands: Sequence[Candidate]) -> np.ndarray:
        """The cost model's scores of ``cands`` (higher: predicted faster)."""
        feats = self.features(cands)
        return np.asarray(self.model.predict(feats, [c.trace for c in cands]), dtype=float)

    @property
    def stats(self) -> dict:
        """The search's own counts (``_own``) and the replays' counts."""
        return {**self._own, **self.maker.stats}

    def measured(self, candidates: Sequence[Candidate],
                 results: Sequence[RunResult] | None = None) -> None:
        self.measured_keys.update(c.key for c in candidates)
