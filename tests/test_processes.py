"""Our worker processes need nothing of the caller's ``__main__``: tuning from a script with
no ``if __name__ == "__main__":`` guard, or from standard input, measures for real; the
numpy baseline runs without the OpenBLAS overrides and says which kernel ran."""

import json
import subprocess
import sys
import textwrap

import probsched as ps
from probsched.measure import Worker
from probsched.measure.baselines import BLAS_OVERRIDES, numpy_baseline

SCRIPT = textwrap.dedent("""
    import json, probsched as ps
    wl = ps.workloads.gmm(b=1, n=32, m=32, k=32)
    res = ps.tune(wl, trials=4, db=None, progress=False, reference=False,
                  population=16, init_min_fresh=8)
    print(json.dumps({"failures": res.failures, "trials": res.trials,
                      "errors": [r.error for r in res.records if not r.ok]}))
""")


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_tuning_from_an_unguarded_script_measures_for_real(tmp_path):
    script = tmp_path / "tune_me.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "bootstrapping phase" not in out.stderr
    got = _last_json(out.stdout)
    assert got["trials"] == 4 and got["failures"] == 0, got["errors"]


def test_tuning_from_standard_input_measures_for_real(tmp_path):
    out = subprocess.run([sys.executable, "-"], input=SCRIPT, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = _last_json(out.stdout)
    assert got["trials"] == 4 and got["failures"] == 0, got["errors"]


def _environ_value(name):
    import os

    return os.environ.get(name)


def test_a_spawned_worker_starts_without_the_dropped_variables(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    with Worker(start_method="spawn", drop_env=BLAS_OVERRIDES, setup=False) as w:
        assert w.call(_environ_value, "OPENBLAS_CORETYPE", timeout_s=120).value is None
    import os

    assert os.environ["OPENBLAS_CORETYPE"] == "Prescott"  # only the child went without


def test_the_numpy_baseline_names_its_kernel():
    wl = ps.workloads.gmm(b=1, n=64, m=64, k=64)
    base = numpy_baseline("GMM", wl, threads=1)
    assert base.seconds is not None and base.seconds > 0
    assert "openblas" in base.kernel.lower() and base.threads == 1
