"""Evolutionary search, MetaSchedule's: which candidates of a space to measure next.

A round (:meth:`EvolutionarySearch.propose`):

1. the population: the database's best records (``init_best_fraction`` of it: the space run
   again with their decisions, by address), the rest fresh samples of the space (at least
   ``init_min_fresh``);
2. ``generations`` times: the cost model scores the population; the best candidates never
   measured go into a heap; parents are drawn in proportion to their score and each child is
   a mutation (probability ``mutation_prob``) or a copy of its parent;
3. the batch: the heap's best, except that each pick is, with probability ``epsilon``, a
   random fresh sample instead. Candidates with decisions already measured (the trace's
   :func:`~probsched.schedule.decisions_key`) or already picked are skipped: each is
   measured once.

A candidate is plain frozen data: its decisions by address, its trace and program. Replays
are cached by decisions (a small space is revisited all the time), as are store features.
The search's own time is budgeted: a round's population is sized so that the round costs
about ``overhead_budget_s`` per candidate asked for, from the measured cost of a new candidate
(the first fresh samples of the first round probe it; later rounds use the last round's cost
per replay, cache hits making mutation cheaper): MetaSchedule's 512 when replays are fast,
down to ``min_population`` when they are slow; ``stats`` says what it did. A round may
propose fewer candidates than asked, none when the space is exhausted.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass

from ..ir.compute import Workload
from ..target import Target
from .candidates import CandidateMaker
from .cost_model import CostModel
from .database import TuningDatabase
from .features import FeatureCache
from .mutation_search import MutationSearch
from .strategy import Candidate

log = logging.getLogger("probsched.tune")


@dataclass(frozen=True)
class SearchConfig:
    """MetaSchedule's defaults; ``overhead_budget_s`` (the search's seconds per proposed
    candidate: issue 11's bar of 0.35 s of tuning wall per trial, less what building,
    running, model fits and database writes take per trial, about 0.1 s, and room for a
    loaded machine) and ``min_population`` bound the adaptive population: on a loaded 2-core
    Zen 3 a candidate of the generated space costs 10-25 ms, so a round of 64 runs 110-125
    members on GMM-1024 and 65-80 on the ResNet C2D, not 512 (docs/benchmarks.md, issue 11
    item 2; a budget of ``math.inf`` always runs 512); ``mutator_probs`` None: the defaults;
    ``replay_retries``: mutations tried per child before it is dropped."""

    population: int = 512
    init_best_fraction: float = 0.2
    init_min_fresh: int = 50
    generations: int = 4
    mutation_prob: float = 0.85
    epsilon: float = 0.05
    batch: int = 64
    mutator_probs: tuple[tuple[str, float], ...] | None = None
    replay_retries: int = 4
    overhead_budget_s: float = 0.15
    min_population: int = 16


class EvolutionarySearch(MutationSearch):
    """See the module docstring. ``db`` (optional) seeds the population with its best records
    and marks their decisions measured; ``features`` computes (and caches) what the model
    scores (share it with what trains the model)."""

    config: SearchConfig

    def __init__(self, workload: Workload, space, model: CostModel, *, seed: int = 0,
                 config: SearchConfig | None = None, db: TuningDatabase | None = None,
                 target: Target | None = None, features: FeatureCache | None = None,
                 maker: CandidateMaker | None = None):
        super().__init__(workload, space, model, config or SearchConfig(), seed=seed, db=db,
                         target=target, features=features, maker=maker)
        self.population = self.config.population
        self._cost_s: float | None = None  # seconds per new candidate in the last round
        self._own = {"rounds": 0, "search_s": 0.0, "population": self.population}

    # ------------------------------------------------------------ candidates

    def _fresh(self, n: int) -> list[Candidate]:
        """Up to ``n`` distinct fresh samples; sampling stops early once ``init_min_fresh``
        samples in a row brought nothing new (a small space, seen whole)."""
        out: dict[str, Candidate] = {}
        stale = 0
        for _ in range(2 * n):  # failing samples are skipped, within bounds
            cand = self.maker.make(None)
            stale = stale + 1 if cand is None or cand.key in out else 0
            if cand is not None:
                out.setdefault(cand.key, cand)
            if len(out) == n or stale >= self.config.init_min_fresh:
                break
        return list(out.values())

    # ------------------------------------------------------------ a round

    def propose(self, n: int) -> list[Candidate]:
        t0 = time.perf_counter()
        c, rng = self.config, self.rng
        replays = self.maker.stats["replays"]
        fresh = self._fresh(c.init_min_fresh)  # also a probe of what a replay costs
        if self._cost_s is None:
            probe = time.perf_counter() - t0
            self._cost_s = 1.5 * probe / max(1, self.maker.stats["replays"] - replays)
        self.population = self._size(n, self._cost_s)
        best = self._from_db(int(self.population * c.init_best_fraction))
        more = self._fresh(max(0, self.population - len(best) - len(fresh)))
        fresh += [f for f in more if f.key not in {x.key for x in fresh}]
        pop = best + fresh
        heap: dict[str, tuple[float, Candidate]] = {}
        for gen in range(c.generations):
            if not pop:
                break
            scores = self.scores(pop)
            for s, cand in zip(scores, pop, strict=True):
                if cand.key not in self.measured_keys:
                    heap[cand.key] = (float(s), cand)
            if gen == c.generations - 1:
                break
            w = scores - scores.min() + 1e-6
            parents = rng.choice(len(pop), size=self.population, p=w / w.sum())
            children = []
            for k in parents:
                child = pop[k]
                if rng.random() < c.mutation_prob:
                    child = self._mutant(pop[k]) or pop[k]
                children.append(child)
            pop = children
        ranked = [cand for _, _, cand in heapq.nlargest(
            len(heap), ((s, -i, cand) for i, (s, cand) in enumerate(heap.values())))]
        randoms = [f for f in fresh if f.key not in self.measured_keys]
        picked: dict[str, Candidate] = {}
        while len(picked) < n and (ranked or randoms):
            source = randoms if (rng.random() < c.epsilon and randoms) or not ranked else ranked
            cand = source.pop(int(rng.integers(len(source))) if source is randoms else 0)
            if cand.key not in picked:
                picked[cand.key] = cand
        seconds = time.perf_counter() - t0
        if self.maker.stats["replays"] > replays:
            self._cost_s = seconds / (self.maker.stats["replays"] - replays)
        self._own["rounds"] += 1
        self._own["search_s"] += seconds
        self._own["population"] = self.population
        log.debug("evolution: population %d (%d stored bests, %d fresh), %d candidates "
                  "proposed in %.2f s", self.population, len(best), len(fresh), len(picked),
                  seconds)
        return list(picked.values())

    def _size(self, n: int, cost_s: float) -> int:
        """The population whose round fits ``overhead_budget_s`` per candidate of ``n``,
        given what one new candidate (replay, features, prediction) cost so far
        (``cost_s``)."""
        c = self.config
        per_member = cost_s * (1 + (c.generations - 1) * c.mutation_prob)
        fits = c.overhead_budget_s * max(1, n) / max(per_member, 1e-9)  # inf: no bound
        return max(c.min_population, int(min(c.population, fits)))
