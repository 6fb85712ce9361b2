"""How the tuner measures a round (search/measuring.py): one at a time through ``run``, or all
at once through ``run_many``, results in the candidates' order either way; re-timings the
same with both, batched with ``run_many``."""

from __future__ import annotations

from types import SimpleNamespace

from probsched.measure import RunResult
from probsched.measure.builder import BuildResult
from probsched.search.callbacks import MeasureCallback
from probsched.search.measuring import measure_round, retime
from probsched.search.rounds import PhaseClock

LATENCY = {"a": 3e-3, "b": 1e-3, "c": 2e-3, "d": 4e-3, "e": 0.5e-3}


class OneByOne:
    """A runner with ``run`` only; each artifact (a name) has a fixed latency."""

    def __init__(self):
        self.calls: list[tuple[str, float | None]] = []

    def run(self, artifact, workload, *, seed=0, slow_s=None):
        self.calls.append((artifact, slow_s))
        return RunResult(True, LATENCY[artifact], LATENCY[artifact])

    def close(self):
        pass


class AllAtOnce(OneByOne):
    """The same with ``run_many``: records each batch sent."""

    def __init__(self):
        super().__init__()
        self.batches: list[list[str]] = []

    def run_many(self, artifacts, workload, *, seed=0, slow_s=None):
        self.batches.append(list(artifacts))
        return iter([self.run(a, workload, slow_s=slow_s) for a in artifacts])


def built(names):
    return [BuildResult(n) if n != "x" else BuildResult(None, "no", "error") for n in names]


def test_a_round_comes_back_in_order_with_failed_builds_in_place():
    for runner in (OneByOne(), AllAtOnce()):
        bars = iter([None, 1.0, 2.0, 3.0])
        out = list(measure_round(runner, None, built(["a", "x", "b", "c"]),
                                 lambda b=bars: next(b), PhaseClock()))
        assert [r.latency_s for r in out][0] == LATENCY["a"]
        assert out[1].error_kind == "build" and out[1].error == "no"
        assert [r.latency_s for r in out[2:]] == [LATENCY["b"], LATENCY["c"]]
        if isinstance(runner, AllAtOnce):  # one batch, the bar of the round's start
            assert runner.batches == [["a", "b", "c"]]
            assert [s for _, s in runner.calls] == [None, None, None]
        else:  # the bar read before each run
            assert [s for _, s in runner.calls] == [None, 1.0, 2.0]


class Heard(MeasureCallback):
    def __init__(self):
        self.retimings: list[str] = []

    def retimed(self, candidate, result):
        self.retimings.append(candidate.key)


def test_retimings_are_the_same_batched_or_not():
    names = ["a", "b", "c", "d", "e"]
    batch = [SimpleNamespace(key=n) for n in names]
    results = [RunResult(True, LATENCY[n], LATENCY[n]) for n in names]
    heard = []
    for runner in (OneByOne(), AllAtOnce()):
        sink = Heard()
        timings = {n: [LATENCY[n]] for n in names}
        retime(runner, None, batch, built(names), results, timings, [sink], 2, 2)
        heard.append((sink.retimings, timings))
        if isinstance(runner, AllAtOnce):  # the top 2 twice each, in one batch
            assert runner.batches[0] == ["e", "e", "b", "b"]
    assert heard[0] == heard[1]
    assert heard[0][0][:4] == ["e", "e", "b", "b"]
