"""A reference that cannot be computed is its own clear error, with the size it needed, not
the candidate's verdict; float32 intermediates are stored as float32."""

import subprocess
import sys
import time

import numpy as np
import pytest

import probsched as ps
from probsched.errors import ResourceError
from probsched.ir import reference as R
from probsched.ir.rounding import error_bounds

BIG = """
workload big(n = {n}):
    input A: float32[n, n]
    B[i, j] = A[i, j] * 2.0
    C[i] = sum(B[i, j])
"""


def test_run_says_the_reference_needs_too_much_memory(tmp_path):
    have = R.available_bytes() or 24 * 2**30
    n = int((have / 4) ** 0.5) + 1  # one n x n float32 tensor takes all there is
    path = tmp_path / "big.sched"
    path.write_text(BIG.format(n=n))
    t = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "probsched", "run", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "not correct" not in out.stderr
    # refused at the workload's definition, before a worker computes anything
    assert f"{path}:2:1: error: workload big: checking its candidates needs" in out.stderr
    assert "GiB" in out.stderr and f"{n}x{n}" in out.stderr
    assert time.monotonic() - t < 120  # refused before allocating, not after swapping


def test_reference_and_bounds_refuse_before_allocating(monkeypatch):
    wl = ps.workloads.gmm(b=1, n=64, m=64, k=64)
    monkeypatch.setattr(R, "available_bytes", lambda: 1024 * 1024)
    inputs = R.random_inputs(wl)
    with pytest.raises(ResourceError, match="gmm: its reference needs .* GiB"):
        R.reference(wl, *inputs)
    with pytest.raises(ResourceError, match="error bounds"):
        error_bounds(wl, *inputs)


def test_float32_stages_are_stored_as_float32():
    wl = ps.workloads.sfm(n=4, m=8)
    inputs = R.random_inputs(wl)
    assert all(x.dtype == np.float32 for x in inputs)
    (out,) = R.reference(wl, *inputs)
    assert out.dtype == np.float32
    assert R.stored_bytes(wl) == sum(4 * int(np.prod(t.shape))
                                     for t in (*wl.inputs, *wl.stages))
