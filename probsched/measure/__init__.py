"""Measurement: the builder compiles candidates in a pool of worker processes; the runner
loads, checks and times them one at a time in a worker of its own. Crashes, hangs and wrong
results become failed records with the reason; the pools keep working.

Modules, in the order a candidate passes through them: worker (isolated processes), builder,
runner, oneshot (the two together: measure, measure_many)."""

from .builder import Builder, BuildResult
from .oneshot import measure, measure_many, runner_overhead
from .runner import RunConfig, Runner, RunResult
from .worker import Reply, Worker

__all__ = [
    "BuildResult", "Builder", "Reply", "RunConfig", "RunResult", "Runner", "Worker", "measure",
    "measure_many", "runner_overhead",
]
