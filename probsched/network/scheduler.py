"""Task schedulers: which task of a network gets the next round of trials.

Pure allocation logic on :class:`TaskStats` (nothing here measures; :mod:`.tuning` runs the
rounds). The objective is the network's end-to-end estimate, the sum over tasks of weight x
best latency. Three strategies, chosen by name (:func:`make_scheduler`):

- ``"round-robin"``: the tasks in turn.
- ``"gradient"``: Ansor's gradient allocation (Zheng et al., OSDI 2020, section 6). After a
  warm-up of one round per task, each task's gradient of the objective is estimated as
  ``w_i * (alpha * backward + (1 - alpha) * forward)``: ``backward`` is the improvement of its
  best latency per round over the last ``window`` rounds (0 until it has that many), and
  ``forward`` how much its next round may gain: down to the smaller of ``g_i - g_i / n_i``
  (the best improving like ``1 / trials``; ``n_i`` its rounds) and ``beta * flops_i /
  best_throughput`` of its similar tasks (same fused kind: what the best of them reaches, if
  this one reached it), minus ``g_i``. The task with the most negative gradient (the largest
  estimated gain) is picked, or with probability ``epsilon`` a random one. alpha=0.2,
  beta=2, window=3 and epsilon=0.05 are Ansor's.
- ``"ucb"``: Bansor-style bandit selection. Each task is an arm explored once; a round's
  reward is the share of the end-to-end estimate it removed (``w_i * (before - after) /
  estimate``), scaled by the largest reward seen so far; the next task maximizes the mean of
  its last ``window`` rewards plus ``c * sqrt(2 ln N / n_i)`` (``N`` rounds in all, ``n_i``
  of task i): sliding-window UCB, since a task's gains shrink as it is tuned.

A task is *dead* when its space is exhausted (a round proposed nothing) or it had two rounds
without one correct candidate; no strategy picks it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ProbschedError

STRATEGIES = ("gradient", "round-robin", "ucb")


@dataclass
class TaskStats:
    """What a scheduler knows of one task: its weight, FLOPs, kind (similar tasks share
    it), its best latency after each of its rounds (``history``, inf: none correct yet) and
    the trials it has had."""

    weight: int
    flops: int
    group: str = ""
    history: list[float] = field(default_factory=list)
    trials: int = 0
    dead: bool = False

    @property
    def rounds(self) -> int:
        return len(self.history)

    @property
    def best(self) -> float:
        return self.history[-1] if self.history else math.inf


def end_to_end(tasks: Sequence[TaskStats]) -> float:
    """Sum of weight x best latency (inf while a task has no correct candidate)."""
    return sum(t.weight * t.best for t in tasks)


def _alive(tasks: Sequence[TaskStats]) -> list[int]:
    return [k for k, t in enumerate(tasks) if not t.dead]


def _unexplored(tasks: Sequence[TaskStats]) -> int | None:
    return next((k for k in _alive(tasks) if tasks[k].rounds == 0), None)


class RoundRobin:
    """The tasks in turn (dead ones skipped)."""

    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, tasks: Sequence[TaskStats]) -> int | None:
        """The next task, or None when every task is dead."""
        n = len(tasks)
        for step in range(n):
            k = (self._next + step) % n
            if not tasks[k].dead:
                self._next = k + 1
                return k
        return None

    def observe(self, k: int, tasks: Sequence[TaskStats]) -> None:
        """Task ``k``'s round is done (its stats updated)."""


class Gradient:
    """Ansor's gradient allocation (see the module docstring)."""

    name = "gradient"

    def __init__(self, *, alpha: float = 0.2, beta: float = 2.0, window: int = 3,
                 epsilon: float = 0.05, seed: int = 0):
        self.alpha, self.beta, self.window, self.epsilon = alpha, beta, window, epsilon
        self.rng = np.random.default_rng(seed)

    def gradient(self, k: int, tasks: Sequence[TaskStats]) -> float:
        """d(end-to-end)/d(rounds of task k), estimated: negative where a round helps."""
        t = tasks[k]
        g = t.best
        if not math.isfinite(g):
            return -math.inf  # no correct candidate yet: anything it finds is a gain
        h = t.history
        backward = (h[-1] - h[-1 - self.window]) / self.window \
            if len(h) > self.window and math.isfinite(h[-1 - self.window]) else 0.0
        g_next = g - g / max(1, t.rounds)
        similar = [j for j, u in enumerate(tasks) if u.group == t.group and j != k
                   and math.isfinite(u.best) and u.best > 0]
        if similar and t.flops > 0:
            best_throughput = max(tasks[j].flops / tasks[j].best for j in [*similar, k])
            g_next = min(g_next, self.beta * t.flops / best_throughput)
        forward = g_next - g
        return t.weight * (self.alpha * backward + (1 - self.alpha) * forward)

    def choose(self, tasks: Sequence[TaskStats]) -> int | None:
        """Warm-up (a task never tuned), else epsilon-greedy on the gradients."""
        alive, first = _warm_up(tasks)
        if first is not None or not alive:
            return first
        if self.rng.random() < self.epsilon:
            return int(alive[int(self.rng.integers(len(alive)))])
        grads = [self.gradient(k, tasks) for k in alive]
        return alive[int(np.argmin(grads))]

    def observe(self, k: int, tasks: Sequence[TaskStats]) -> None:
        """Nothing to keep: the gradients are read off the histories."""


class UCB:
    """Sliding-window UCB over tasks (see the module docstring)."""

    name = "ucb"

    def __init__(self, *, c: float = 0.5, window: int = 4):
        self.c, self.window = c, window
        self.rewards: dict[int, list[float]] = {}
        self._scale = 0.0
        self._rounds = 0

    def score(self, k: int) -> float:
        """Task ``k``'s upper confidence bound (inf: never rewarded yet)."""
        got = self.rewards.get(k, [])
        if not got:
            return math.inf
        recent = got[-self.window:]
        mean = sum(recent) / len(recent) / (self._scale or 1.0)
        return mean + self.c * math.sqrt(2 * math.log(max(2, self._rounds)) / len(got))

    def choose(self, tasks: Sequence[TaskStats]) -> int | None:
        """Each task once (and a task with no correct candidate first), then the best UCB."""
        alive, first = _warm_up(tasks)
        if first is not None or not alive:
            return first
        missing = [k for k in alive if not math.isfinite(tasks[k].best)]
        if missing:
            return missing[0]
        scores = [self.score(k) for k in alive]
        return alive[int(np.argmax(scores))]

    def observe(self, k: int, tasks: Sequence[TaskStats]) -> None:
        """Reward task ``k`` by the share of the end-to-end estimate its round removed."""
        self._rounds += 1
        h = tasks[k].history
        total = end_to_end(tasks)
        if len(h) < 2 or not math.isfinite(total) or total <= 0:
            reward = 0.0
        elif not math.isfinite(h[-2]):
            reward = tasks[k].weight * h[-1] / total  # its first correct one
        else:
            reward = tasks[k].weight * max(0.0, h[-2] - h[-1]) / total
        self._scale = max(self._scale, reward)
        self.rewards.setdefault(k, []).append(reward)


Scheduler = RoundRobin | Gradient | UCB


def make_scheduler(strategy: str, seed: int = 0) -> Scheduler:
    """The scheduler named ``strategy`` (one of :data:`STRATEGIES`)."""
    if strategy == "round-robin":
        return RoundRobin()
    if strategy == "gradient":
        return Gradient(seed=seed)
    if strategy == "ucb":
        return UCB()
    raise ProbschedError(f"unknown task scheduler {strategy!r}; known: {', '.join(STRATEGIES)}")


def _warm_up(tasks: Sequence[TaskStats]) -> tuple[list[int], int | None]:
    """The tasks still tuned, and the one to tune before choosing (a task never tuned yet;
    None when every live task has had its round, or none is left)."""
    alive = _alive(tasks)
    return alive, (_unexplored(tasks) if alive else None)
