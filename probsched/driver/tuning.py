"""``ps.tune``: the search's tune, measured here or on a Dask cluster, with its notes kept.

:func:`tune` is :func:`probsched.search.tuner.tune` (see there for the search and every
option) plus what sits above the search: ``cluster=`` (a Dask scheduler's address, such as
``"tcp://HOST:8786"``, or a ``distributed.Client``) builds on the cluster's workers and
measures on those that own a machine (:mod:`.dask_measure`); and the run's notes (numpy's
time, the machine's peak, the target, versions, the best loop nest: :mod:`.notes`) go into
the database beside its records, for ``probsched report``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ..ir.compute import Workload
from ..lang.space import Space
from ..search.annealing import check_strategy
from ..search.database import Database, TuningDatabase
from ..search.pretrained import resolve as resolve_pretrained
from ..search.tuner import TuneResult
from ..search.tuner import tune as search_tune
from ..target import resolve
from .notes import note_run


def tune(workload: Workload, space: Space | None = None, trials: int = 256,
         db: str | os.PathLike[str] | TuningDatabase | None = "runs.db", seed: int = 0,
         progress: bool = True, *, cluster: Any = None, **options: Any) -> TuneResult:
    """Tune ``workload`` over ``space`` for ``trials`` new trials (the search's ``tune``;
    ``options`` are its keyword options). ``cluster``: measure on a Dask cluster (a scheduler
    address or a ``distributed.Client``; the ``distributed`` extra): builds on any worker,
    measurements on workers started with ``--resources machine=1``, one at a time per
    machine; the builder, runner and re-timer given in ``options`` win over the cluster's."""
    target = resolve(options.pop("target", None))
    check_strategy(options.get("strategy"))  # before the database is created
    if options.get("pretrained") is not None:  # a set that is not there: before it, too
        options["pretrained"] = resolve_pretrained(options["pretrained"])
    with contextlib.ExitStack() as stack:
        database: TuningDatabase | None = None if isinstance(db, str | os.PathLike) else db
        if isinstance(db, str | os.PathLike):
            database = stack.enter_context(Database(db))
        address = None
        if cluster is not None:
            from . import dask_measure

            client, own = dask_measure.connect(cluster)
            if own:
                stack.callback(client.close)
            address = client.scheduler.address
            timeout_s = options.get("runner_timeout_s", 10.0)
            options.setdefault("builder", dask_measure.DaskBuilder(client, target=target))
            options.setdefault("runner", dask_measure.DaskRunner(client, timeout_s))
            options.setdefault("retimer", dask_measure.DaskRunner(client, timeout_s,
                                                                  role="retime"))
        result = search_tune(workload, space, trials, database, seed, progress, target=target,
                             **options)
        if isinstance(database, Database):
            note_run(database, workload, target, result, cluster=address)
    return result


__all__ = ["tune"]
