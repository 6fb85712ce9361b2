"""Simulated annealing over decisions with the cost model: AutoTVM's explorer, as a search
strategy beside evolution (``ps.tune(..., strategy="sa")``, ``probsched tune --strategy sa``).

AutoTVM's ``SimulatedAnnealingOptimizer`` walks ``parallel_size`` points (128) of the space
at once, for ``n_iter`` iterations (500) with a temperature falling linearly from 1 to 0; each
step moves every point to a random neighbour and accepts the move with probability
``exp((new - old) / temperature)`` on the cost model's scores (always when it scores no
worse); a heap keeps the best predicted points never measured, of the batch's size
(``plan_size``, 64), and a round stops early after ``early_stop`` (50) iterations that did not
change the heap. The chains persist: the next round starts from where this one ended, scored
again by the model as it has learned since.

Here a point is a candidate (its decisions by address), a neighbour is one mutation of its
decisions by the mutators (:func:`~.mutators.propose`, MetaSchedule's probabilities) replayed
through the space (:class:`~.candidates.CandidateMaker`, whose replays are cached by
decisions: a chain that comes back costs nothing); a mutation the schedule refuses is retried
``replay_retries`` times, then the point stays where it is. A candidate whose decisions were
measured never enters the heap, so nothing is proposed twice.

One difference from AutoTVM is forced: its point is an index into a table of knobs, ours a
replay of the space (10-25 ms for the generated space on a loaded 2-core machine), so 500
iterations of 128 chains would cost minutes a round. Like evolution, the round is budgeted:
``overhead_budget_s`` seconds per candidate asked for (evolution's budget), the number of
iterations planned from the first iteration's cost, between ``min_iters`` and ``n_iter``
(and when even ``min_iters`` iterations of 128 chains would not fit, fewer chains, down to
``min_chains``, from the measured cost of a new candidate, as evolution sizes its
population), and the temperature falls from ``temperature[0]`` to ``temperature[1]`` over
the planned iterations. ``overhead_budget_s=math.inf`` runs AutoTVM's schedule as it is.

The batch: the heap's best, except that each pick is, with probability ``epsilon``, a random
fresh sample instead (evolution's epsilon-greedy).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ProbschedError
from ..ir.compute import Workload
from ..target import Target
from .candidates import CandidateMaker
from .cost_model import CostModel
from .database import TuningDatabase
from .features import FeatureCache
from .mutation_search import MutationSearch
from .strategy import Candidate

log = logging.getLogger("probsched.tune")

STRATEGIES = ("evolutionary", "sa")


@dataclass(frozen=True)
class AnnealingConfig:
    """AutoTVM's defaults (``plan_size``, ``n_iter``, ``temperature``, ``parallel_size``,
    ``early_stop``), evolution's epsilon-greedy share, mutator probabilities (None: the
    defaults) and retries, and the round's budget (see the module docstring)."""

    plan_size: int = 64
    n_iter: int = 500
    temperature: tuple[float, float] = (1.0, 0.0)
    parallel_size: int = 128
    early_stop: int = 50
    epsilon: float = 0.05
    mutator_probs: tuple[tuple[str, float], ...] | None = None
    replay_retries: int = 4
    overhead_budget_s: float = 0.15
    min_iters: int = 4
    min_chains: int = 16
    init_best_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.parallel_size < 1 or self.n_iter < 1 or self.plan_size < 1:
            raise ProbschedError("simulated annealing: parallel_size, n_iter and plan_size "
                                 "must be >= 1")
        if not 0 <= self.epsilon <= 1:
            raise ProbschedError(f"simulated annealing: epsilon must be in [0, 1], got "
                                 f"{self.epsilon}")


def temperatures(n_iter: int, start: float = 1.0, end: float = 0.0) -> np.ndarray:
    """The temperature of each of ``n_iter`` iterations: linear from ``start`` (the first)
    to ``end`` (the last)."""
    if n_iter <= 1:
        return np.array([start] * max(n_iter, 0), dtype=float)
    return start + (end - start) * np.arange(n_iter) / (n_iter - 1)


def accept(old: np.ndarray, new: np.ndarray, temperature: float,
           rng: np.random.Generator) -> np.ndarray:
    """Which moves are accepted: always one that scores no worse, else with probability
    ``exp((new - old) / temperature)`` (none at temperature 0)."""
    delta = np.asarray(new, dtype=float) - np.asarray(old, dtype=float)
    if temperature <= 0:
        return delta >= 0
    prob = np.exp(np.minimum(delta, 0.0) / temperature)
    return (delta >= 0) | (rng.random(len(delta)) < prob)


class SimulatedAnnealing(MutationSearch):
    """See the module docstring. The :class:`~.strategy.SearchStrategy` protocol, with
    ``maker``, ``measured_keys`` and ``stats`` as :class:`~.evolutionary.EvolutionarySearch`
    has them (the tuner's post-optimization uses the first two)."""

    name = "annealing"

    config: AnnealingConfig

    def __init__(self, workload: Workload, space, model: CostModel, *, seed: int = 0,
                 config: AnnealingConfig | None = None, db: TuningDatabase | None = None,
                 target: Target | None = None, features: FeatureCache | None = None,
                 maker: CandidateMaker | None = None):
        super().__init__(workload, space, model, config or AnnealingConfig(), seed=seed,
                         db=db, target=target, features=features, maker=maker)
        self.points: list[Candidate] = []  # the chains, persistent across rounds
        self.last_temperatures: np.ndarray = np.zeros(0)
        self._cost_s: float | None = None  # seconds per new candidate in the last round
        self._own = {"rounds": 0, "search_s": 0.0, "iterations": 0, "early_stops": 0,
                     "accepted": 0, "moves": 0, "chains": 0}

    # ------------------------------------------------------------ points

    def _fresh(self, n: int) -> list[Candidate]:
        """Up to ``n`` fresh samples (failing ones skipped, within bounds)."""
        out: list[Candidate] = []
        for _ in range(2 * n):
            if len(out) == n:
                break
            cand = self.maker.make(None)
            if cand is not None:
                out.append(cand)
        return out

    def _chains(self, n: int) -> int:
        """How many chains a round of ``n`` runs: ``parallel_size``, fewer (down to
        ``min_chains``) when ``min_iters`` iterations of them, every move a new replay at the
        measured cost of one, would not fit the round's budget."""
        c = self.config
        if not math.isfinite(c.overhead_budget_s) or self._cost_s is None:
            return c.parallel_size
        fits = c.overhead_budget_s * max(1, n) / max(c.min_iters * self._cost_s, 1e-9)
        return max(min(c.min_chains, c.parallel_size), min(c.parallel_size, int(fits)))

    def _grow(self, n: int) -> None:
        """Bring the chains to the number a round of ``n`` runs: at first the database's best
        records and fresh samples that probe what a new candidate costs, then fresh ones."""
        c = self.config
        chains = self._chains(n)
        if self._cost_s is None:
            t0, replays = time.perf_counter(), self.maker.stats["replays"]
            self.points += self._fresh(min(c.min_chains, chains))
            self.points += self._from_db(int(c.parallel_size * c.init_best_fraction))
            if self.points:
                self.scores(self.points)  # features and a prediction are part of the cost
            done = max(1, self.maker.stats["replays"] - replays)
            self._cost_s = (time.perf_counter() - t0) / done
            chains = self._chains(n)
        if len(self.points) < chains:
            self.points += self._fresh(chains - len(self.points))

    # ------------------------------------------------------------ a round

    def anneal(self, n: int) -> list[Candidate]:
        """The annealing of one round: the best predicted candidates never measured, best
        first (at most ``max(n, plan_size)``)."""
        c, rng = self.config, self.rng
        t0 = time.perf_counter()
        replays = self.maker.stats["replays"]
        self._grow(n)
        chains = self._chains(n)
        if not self.points:
            return []
        scores = self.scores(self.points)
        if len(self.points) > chains:  # a slower space than thought: keep the best chains
            keep = np.argsort(-scores, kind="stable")[:chains]
            self.points, scores = [self.points[k] for k in keep], scores[keep]
        size = max(n, c.plan_size)
        # a min-heap of (score, order of entry, key, candidate): the worst, first entered
        # among equals, at the top; ``held`` the keys in it
        heap: list[tuple[float, int, str, Candidate]] = []
        held: set[str] = set()
        entered = itertools.count()

        def offer(cands: Sequence[Candidate], values: np.ndarray) -> bool:
            changed = False
            for s, cand in zip(values.tolist(), cands, strict=True):
                if cand.key in self.measured_keys or cand.key in held:
                    continue
                entry = (s, next(entered), cand.key, cand)
                if len(heap) < size:
                    heapq.heappush(heap, entry)
                elif s > heap[0][0]:
                    held.discard(heapq.heapreplace(heap, entry)[2])
                else:
                    continue
                held.add(cand.key)
                changed = True
            return changed

        offer(self.points, scores)
        budget = c.overhead_budget_s * max(1, n)
        temps = temperatures(c.n_iter, *c.temperature)
        last_change, k = 0, 0
        while k < len(temps):
            moved = [self._mutant(p) or p for p in self.points]
            new_scores = self.scores(moved)
            ok = accept(scores, new_scores, float(temps[k]), rng)
            self.points = [m if a else p for m, p, a in zip(moved, self.points, ok, strict=True)]
            scores = np.where(ok, new_scores, scores)
            self._own["accepted"] += int(ok.sum())
            self._own["moves"] += len(ok)
            if offer(moved, new_scores):
                last_change = k
            k += 1
            if k == 1 and math.isfinite(budget):  # plan the iterations the budget allows
                per_iter = time.perf_counter() - t0
                planned = max(c.min_iters, min(c.n_iter, int(budget / max(per_iter, 1e-9))))
                temps = temperatures(planned, *c.temperature)
            if k - last_change > c.early_stop:
                self._own["early_stops"] += 1
                break
        self.last_temperatures = temps[:k]
        self._own["iterations"] += k
        self._own["chains"] = len(self.points)
        if self.maker.stats["replays"] > replays:
            self._cost_s = (time.perf_counter() - t0) / (self.maker.stats["replays"] - replays)
        return [cand for _, _, _, cand in sorted(heap, key=lambda e: (-e[0], e[1]))]

    def propose(self, n: int) -> list[Candidate]:
        t0 = time.perf_counter()
        ranked = self.anneal(n)
        randoms: list[Candidate] = []
        picked: dict[str, Candidate] = {}
        while len(picked) < n and ranked:
            if self.rng.random() < self.config.epsilon:
                if not randoms:
                    randoms = [f for f in self._fresh(8) if f.key not in self.measured_keys]
                if randoms:
                    cand = randoms.pop()
                    if cand.key not in picked:
                        picked[cand.key] = cand
                    continue
            cand = ranked.pop(0)
            if cand.key not in picked and cand.key not in self.measured_keys:
                picked[cand.key] = cand
        seconds = time.perf_counter() - t0
        self._own["rounds"] += 1
        self._own["search_s"] += seconds
        log.debug("annealing: %d chains, %d iterations, %d candidates proposed in %.2f s",
                  len(self.points), len(self.last_temperatures), len(picked), seconds)
        return list(picked.values())


def check_strategy(strategy) -> None:
    """Refuse a strategy name that is not one of :data:`STRATEGIES` (instances pass)."""
    if isinstance(strategy, str) and strategy not in STRATEGIES:
        raise ProbschedError(f"unknown search strategy {strategy!r}; known: "
                             f"{', '.join(STRATEGIES)}")


def make_search(name: str, workload: Workload, space, model: CostModel, *, seed: int,
                config, db: TuningDatabase | None, target: Target,
                features: FeatureCache):
    """The main search strategy named ``name`` (one of :data:`STRATEGIES`): evolution with
    ``config`` (a :class:`~.evolutionary.SearchConfig`), or annealing with AutoTVM's
    defaults and ``config``'s epsilon, mutator probabilities, retries and budget."""
    from .evolutionary import EvolutionarySearch

    if name == "evolutionary":
        return EvolutionarySearch(workload, space, model, seed=seed, config=config, db=db,
                                  target=target, features=features)
    if name == "sa":
        cfg = AnnealingConfig(epsilon=config.epsilon, mutator_probs=config.mutator_probs,
                              replay_retries=config.replay_retries,
                              overhead_budget_s=config.overhead_budget_s)
        return SimulatedAnnealing(workload, space, model, seed=seed, config=cfg, db=db,
                                  target=target, features=features)
    check_strategy(name)
    raise AssertionError(name)  # unreachable: check_strategy refused it


__all__ = ["STRATEGIES", "AnnealingConfig", "SimulatedAnnealing", "accept", "check_strategy",
           "make_search", "temperatures"]
