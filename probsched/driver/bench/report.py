"""The report benchmark (``probsched bench --suite report``): rendering a database of 3
workloads and 1,000 records (bar <= 5 s).

The database holds real traces of the generated space (sampled, not measured: their figures
are drawn from a seeded generator, a tenth of them failures of three kinds), so that the page
has a curve, a spread and failures to draw for each workload. Timed twice: ``probsched report``
in a fresh process (imports included: what a user waits for) and :func:`write_report` in this
one.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...lang.loader import generated_space
from ...measure.runner import RunResult
from ...schedule import Schedule
from ...search.database import Database
from ...target import host
from ...workloads import gmm, sfm
from . import suite


def make_database(path: Path, records: int = 1000, seed: int = 0) -> None:
    """``records`` records of 3 workloads (a third each) in a new database at ``path``."""
    rng = random.Random(seed)
    workloads = [gmm(b=1, n=64, m=64, k=64), gmm(b=1, n=128, m=128, k=128), sfm(n=128, m=128)]
    space = generated_space()
    with Database(path) as db:
        for k in range(records):
            wl = workloads[k % len(workloads)]
            sch = Schedule(wl, seed=k)
            space.apply(sch)
            if rng.random() < 0.1:
                kind = rng.choice(["build", "wrong", "timeout"])
                result = RunResult.failed(kind, f"{kind}: a drawn failure")
            else:
                lat = 1e-5 * (1 + 9 * rng.random())
                result = RunResult(True, lat, 0.9 * lat, (0.9 * lat, lat, 1.1 * lat), 1e-6)
            db.add_record(wl, sch.trace, result, target=host().key, space="generated",
                          seed=seed)


@suite("report")
def report_bench(trials: int | None, progress) -> dict:
    """Render the report of 3 workloads and ``trials`` (default 1,000) records."""
    from ..report import write_report

    records = trials or 1000
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        progress(f"making a database of {records} records")
        make_database(db, records)
        out = Path(tmp) / "report.html"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "probsched", "report", "--db", str(db), "-o",
                        str(out)], check=True, capture_output=True)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        write_report(db, out)
        warm = time.perf_counter() - t
        size = out.stat().st_size
    rows = [{"what": "probsched report (fresh process)", "records": records, "s": cold},
            {"what": "write_report (imports done)", "records": records, "s": warm}]
    return {"rows": rows, "summary": {"page bytes": size, "bar <= 5 s met": cold <= 5.0}}
