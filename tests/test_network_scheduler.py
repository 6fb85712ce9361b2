"""The task schedulers' allocation logic, as pure functions of task statistics: round-robin
cycles, the gradient picks the task with the largest estimated gain after its warm-up, UCB
explores each task once then exploits the one whose rounds paid."""

from __future__ import annotations

import math

import pytest

from probsched.errors import ProbschedError
from probsched.network.scheduler import (
    UCB,
    Gradient,
    RoundRobin,
    TaskStats,
    end_to_end,
    make_scheduler,
)


def stats(*bests, weight=1, flops=10**6, group="conv"):
    return [TaskStats(weight, flops, group, list(h), 64 * len(h)) for h in bests]


def test_round_robin_cycles_and_skips_dead_tasks():
    tasks = stats([], [], [])
    rr = RoundRobin()
    assert [rr.choose(tasks) for _ in range(5)] == [0, 1, 2, 0, 1]
    tasks[2].dead = True
    assert [rr.choose(tasks) for _ in range(3)] == [0, 1, 0]
    for t in tasks:
        t.dead = True
    assert rr.choose(tasks) is None


def test_gradient_warms_up_each_task_once_in_order():
    tasks = stats([1.0], [], [])
    g = Gradient(epsilon=0.0)
    assert g.choose(tasks) == 1
    tasks[1].history.append(1.0)
    assert g.choose(tasks) == 2


def test_gradient_picks_the_largest_estimated_gain():
    # same history shape; task 1 runs 3 times in the network: its gain counts thrice
    tasks = stats([2e-3, 1e-3], [2e-3, 1e-3], [2e-3, 1e-3], group="x")
    tasks[1].weight = 3
    g = Gradient(epsilon=0.0)
    assert g.choose(tasks) == 1
    # a task still improving fast (backward window) beats one that stalled
    tasks = stats([4e-3, 3e-3, 2e-3, 1e-3], [1e-3, 1e-3, 1e-3, 1e-3], group="x")
    assert g.gradient(0, tasks) < g.gradient(1, tasks) < 0
    assert g.choose(tasks) == 0


def test_gradient_forward_term_uses_similar_tasks_throughput():
    # task 0 reaches 10 GFLOP/s, task 1 (same kind, same FLOPs) only 1: task 1 has more to gain
    slow, fast = [1e-3] * 5, [1e-4] * 5
    tasks = stats(fast, slow)
    g = Gradient(epsilon=0.0)
    assert g.choose(tasks) == 1
    assert g.gradient(1, tasks) == pytest.approx(0.8 * (2 * 1e-4 - 1e-3))


def test_gradient_prefers_a_task_with_no_correct_candidate_and_explores_by_epsilon():
    tasks = stats([1e-3, 1e-3], [math.inf])
    assert Gradient(epsilon=0.0).choose(tasks) == 1
    tasks = stats([1e-3, 5e-4], [1e-3, 1e-3])
    picks = {Gradient(epsilon=1.0, seed=s).choose(tasks) for s in range(20)}
    assert picks == {0, 1}


def test_ucb_explores_each_task_then_exploits_the_paying_one():
    tasks = stats([], [], [])
    ucb = UCB(c=0.1)
    order = []
    for _ in range(3):
        k = ucb.choose(tasks)
        order.append(k)
        tasks[k].history.append(1e-3)
        ucb.observe(k, tasks)
    assert order == [0, 1, 2]
    # task 2's next round halves it; the others' rounds gain nothing
    for k, new in ((0, 1e-3), (1, 1e-3), (2, 5e-4)):
        tasks[k].history.append(new)
        ucb.observe(k, tasks)
    picks = []
    for _ in range(6):
        k = ucb.choose(tasks)
        picks.append(k)
        tasks[k].history.append(tasks[k].best * (0.9 if k == 2 else 1.0))
        ucb.observe(k, tasks)
    assert picks.count(2) >= 4


def test_ucb_bonus_brings_back_a_neglected_task():
    ucb = UCB(c=1.0)
    ucb.rewards = {0: [1.0] * 50, 1: [0.5]}
    ucb._scale, ucb._rounds = 1.0, 51
    assert ucb.score(1) > ucb.score(0)


def test_end_to_end_and_names():
    tasks = stats([2e-3], [1e-3])
    tasks[0].weight = 2
    assert end_to_end(tasks) == pytest.approx(5e-3)
    assert math.isinf(end_to_end(stats([1e-3], [])))
    assert make_scheduler("ucb").name == "ucb"
    with pytest.raises(ProbschedError, match="round-robin"):
        make_scheduler("greedy")
