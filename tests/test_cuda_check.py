"""The GPU runner's output check on the device (probsched.measure.cuda_check): its kernel is
valid PTX for every dtype pair it takes, and on a device it decides what the host's check
decides. The device tests are marked ``gpu`` and skip, with the reason, without one."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probsched.measure import cuda, cuda_check
from probsched.target import cuda_target

WHY = cuda.unavailable()
needs_gpu = pytest.mark.skipif(WHY is not None, reason=f"no GPU here: {WHY}")
PAIRS = [("float32", "float32"), ("float32", "float64"), ("float64", "float64")]


def test_the_pairs_it_takes():
    for out, ref in PAIRS:
        assert cuda_check.supported(np.dtype(out), np.dtype(ref))
    for out, ref in [("float64", "float32"), ("int32", "int32"), ("bool", "bool"),
                     ("float16", "float32")]:
        assert not cuda_check.supported(np.dtype(out), np.dtype(ref))


@pytest.mark.parametrize(("out", "ref"), PAIRS)
def test_the_kernel_is_ptx_with_one_entry_and_full_width_loads(out, ref):
    ptx = cuda_check.check_ptx(out, ref, cuda_target("sm_90"))
    assert f".entry {cuda_check.ENTRY}(" in ptx
    assert "atom.global.max.u64" in ptx and "atom.global.add.u32" in ptx
    if ref == "float64":  # one 8-byte load each for the reference and the tolerance
        assert ptx.count("ld.global.b64") == 2 + (out == "float64")


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas is not installed here")
@pytest.mark.parametrize(("out", "ref"), PAIRS)
def test_ptxas_accepts_the_kernel(out, ref, tmp_path):
    path = tmp_path / "check.ptx"
    path.write_text(cuda_check.check_ptx(out, ref, cuda_target("sm_90")))
    done = subprocess.run(["ptxas", "-arch=sm_90", str(path), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _device_verdict(out: np.ndarray, ref: np.ndarray, tol: np.ndarray):
    from cuda.bindings import driver

    from probsched.measure.cuda_driver import call, check

    cuda._open()
    ptr = int(check(driver.cuMemAlloc(out.nbytes), "cuMemAlloc"))
    try:
        call(driver.cuMemcpyHtoD(ptr, out.ctypes.data, out.nbytes), "copy")
        verify = cuda_check.DeviceCheck(driver, [out], [ref], [tol], True,
                                        cuda.device_target())
        try:
            return verify(driver, [ptr])
        finally:
            verify.free(driver)
    finally:
        driver.cuMemFree(ptr)


@pytest.mark.gpu
@needs_gpu
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5000), pair=st.sampled_from(PAIRS), seed=st.integers(0, 2**16),
       spoil=st.sampled_from(["none", "over", "nan", "at the bound"]))
def test_the_device_decides_what_the_host_decides(n, pair, seed, spoil):
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal(n).astype(pair[1])
    tol = np.full(n, 1e-3, pair[1])
    out = (ref + rng.uniform(-1e-3, 1e-3, n) * 0.5).astype(pair[0])
    k = int(rng.integers(n))
    if spoil == "over":
        out[k] = ref[k] + 0.01
    elif spoil == "nan":
        out[k] = np.nan
    elif spoil == "at the bound":
        tol[k] = abs(out[k].astype(pair[1]) - ref[k])
    diff = np.abs(out - ref)
    host_ok = bool(np.all(diff <= tol))
    passed, worst = _device_verdict(out, ref, tol)
    assert passed == host_ok
    if host_ok:
        assert worst == float(np.max(diff))
