"""``probsched export`` / ``ps.export``: the best kernel of a database as a shared library with
a C header; a C program built against it with the system compiler computes the reference's
result; the library loads in a Python without probsched (nor numpy); ``ps.load_kernel`` calls
it on numpy arrays, checking shapes and dtypes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import probsched as ps
from probsched.codegen.library import write_library
from probsched.ir.reference import check_outputs
from probsched.ir.rounding import TINY, error_bounds, tolerance
from probsched.measure import RunResult
from probsched.search.database import Database
from probsched.target import host

REPO = Path(__file__).resolve().parent.parent
MATMUL = str(REPO / "examples" / "matmul.sched")
PARAMS = {"n": 32, "m": 24, "k": 16}
SMALL = [arg for name, value in PARAMS.items() for arg in ("--param", f"{name}={value}")]

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")

MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "gmm.h"

static void load(const char *path, float *x, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f || fread(x, sizeof(float), n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

int main(int argc, char **argv) {
    static float a[GMM_A_SIZE], b[GMM_B_SIZE], c[GMM_C_SIZE];
    const int shape[GMM_C_RANK] = GMM_C_SHAPE;
    if (argc != 4) return 2;
    load(argv[1], a, GMM_A_SIZE);
    load(argv[2], b, GMM_B_SIZE);
    gmm(a, b, c);
    FILE *f = fopen(argv[3], "wb");
    fwrite(c, sizeof(float), GMM_C_SIZE, f);
    fclose(f);
    printf("%d %d\n", shape[0], shape[1]);
    return 0;
}
"""


def cli(*args, cwd=REPO):
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "probsched", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def matmul():
    return ps.load(MATMUL).workload(None, **PARAMS)


def stored(path, seeds=(1, 2)):
    """A database with correct records of matmul.sched's workload for this host: schedules of
    its ``tiled`` space (a parallel loop, vectors, unrolling), the first one the fastest."""
    wl, space = matmul(), ps.load(MATMUL).space("tiled")
    with Database(path) as db:
        for k, seed in enumerate(seeds):
            sch = ps.Schedule(wl, seed=seed)
            space.apply(sch)
            s = 1e-3 * (k + 1)
            db.add_record(wl, sch.trace, RunResult(True, s, s, (s,)), target=host().key)
    return path


def reference_check(wl, inputs, outputs):
    refs = ps.reference(wl, *inputs)
    bounds = error_bounds(wl, *inputs)
    tols = [(tolerance(r, b, s.dtype) + TINY).astype(r.dtype)
            for r, b, s in zip(refs, bounds, wl.outputs, strict=True)]
    return check_outputs(outputs, refs, tolerances=tols)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``probsched export`` of a stored database: the output folder."""
    tmp = tmp_path_factory.mktemp("export")
    db = stored(tmp / "runs.db")
    out = cli("export", MATMUL, "--db", str(db), *SMALL, "-o", str(tmp / "kernel"))
    assert out.returncode == 0, out.stderr
    assert "checked against the reference" in out.stdout and "-lgmm" in out.stdout
    return tmp / "kernel"


def test_export_writes_a_library_its_header_and_object(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["gmm.h", "gmm.o", "libgmm.so"]
    header = (exported / "gmm.h").read_text()
    assert "void gmm(const float *A, const float *B, float *C);" in header
    assert "A: input, float32 (C float), shape [32][16]" in header
    assert "C: output, float32 (C float), shape [32][24]" in header
    assert "row-major (C) order, contiguous" in header
    assert "record 1 of" in header and "input A: float32[32, 16]" in header  # the workload
    assert "libgomp" in header  # the tiled space has a parallel loop
    needed = subprocess.run(["ldd", str(exported / "libgmm.so")], capture_output=True,
                            text=True).stdout
    assert "libgomp" in needed and "not found" not in needed
    syms = subprocess.run(["nm", "-D", "--defined-only", str(exported / "libgmm.so")],
                          capture_output=True, text=True).stdout
    assert " T gmm" in syms and "probsched_kernel_info" in syms


@pytest.mark.parametrize("linked", ["shared", "object"])
def test_a_c_program_built_against_the_header_computes_the_reference(exported, tmp_path,
                                                                     linked):
    """Against the shared library, or with the object file linked in (and -lgomp)."""
    (tmp_path / "main.c").write_text(MAIN_C)
    exe = tmp_path / "main"
    lib = ([f"-L{exported}", "-lgmm", f"-Wl,-rpath,{exported}"] if linked == "shared"
           else [str(exported / "gmm.o"), "-lgomp"])
    built = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-o", str(exe),
                            str(tmp_path / "main.c"), f"-I{exported}", *lib],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wl = matmul()
    rng = np.random.default_rng(7)
    a = rng.uniform(-1, 1, (32, 16)).astype(np.float32)
    b = rng.uniform(-1, 1, (16, 24)).astype(np.float32)
    a.tofile(tmp_path / "a.bin")
    b.tofile(tmp_path / "b.bin")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "2"}
    ran = subprocess.run([str(exe), "a.bin", "b.bin", "c.bin"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["32", "24"]  # GMM_C_SHAPE
    c = np.fromfile(tmp_path / "c.bin", dtype=np.float32).reshape(32, 24)
    ok, _, why = reference_check(wl, (a, b), (c,))
    assert ok, why


LOAD_WITHOUT_PROBSCHED = r"""
import ctypes, json, sys
for name in ("probsched", "numpy"):
    try:
        __import__(name)
        sys.exit(name + " is importable here")
    except ImportError:
        pass
lib = ctypes.CDLL(sys.argv[1])
info = json.loads(ctypes.string_at(ctypes.addressof(
    ctypes.c_char.in_dll(lib, "probsched_kernel_info"))).decode())
a = (ctypes.c_float * (32 * 16))(*[((i * 7) % 11 - 5) / 4 for i in range(32 * 16)])
b = (ctypes.c_float * (16 * 24))(*[((i * 5) % 13 - 6) / 8 for i in range(16 * 24)])
c = (ctypes.c_float * (32 * 24))()
lib.gmm(a, b, c)
print(json.dumps({"entry": info["entry"], "c": list(c)}))
"""


def test_the_library_loads_and_runs_in_a_python_without_probsched(exported, tmp_path):
    script = tmp_path / "bare.py"
    script.write_text(LOAD_WITHOUT_PROBSCHED)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # no PYTHONPATH, no venv
    ran = subprocess.run([sys.executable, "-I", "-S", str(script), str(exported / "libgmm.so")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    data = json.loads(ran.stdout)
    assert data["entry"] == "gmm"
    a = np.array([((i * 7) % 11 - 5) / 4 for i in range(32 * 16)], np.float32).reshape(32, 16)
    b = np.array([((i * 5) % 13 - 6) / 8 for i in range(16 * 24)], np.float32).reshape(16, 24)
    c = np.array(data["c"], np.float32).reshape(32, 24)
    ok, _, why = reference_check(matmul(), (a, b), (c,))
    assert ok, why


def test_load_kernel_calls_the_library_on_numpy_arrays_and_checks_them(exported):
    kernel = ps.load_kernel(exported / "libgmm.so")
    assert [a.name for a in kernel.signature.args] == ["A", "B", "C"]
    wl = matmul()
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (32, 16)).astype(np.float32)
    b = rng.uniform(-1, 1, (16, 24)).astype(np.float32)
    (c,) = kernel(a, b)
    ok, _, why = reference_check(wl, (a, b), (c,))
    assert ok, why
    (c64,) = kernel(a.astype(np.float64), b)  # same kind: converted
    assert np.array_equal(c64, c)
    with pytest.raises(ps.ProbschedError, match=r"input A: expected shape \(32, 16\), got"):
        kernel(a.T, b)
    with pytest.raises(ps.ProbschedError, match="input B: expected float32 values"):
        kernel(a, b.astype(np.complex64))
    with pytest.raises(ps.ProbschedError, match="takes 2 inputs, got 1"):
        kernel(a)
    with pytest.raises(ps.ProbschedError, match="not a kernel library written by probsched"):
        ps.load_kernel(next(Path(np.__file__).parent.rglob("*.so")))
    with pytest.raises(ps.ProbschedError, match="cannot load it as a shared library"):
        ps.load_kernel(exported / "gmm.h")


def test_load_kernel_refuses_code_for_features_this_host_lacks(exported, monkeypatch):
    import dataclasses

    import probsched.codegen.library as library

    poorer = dataclasses.replace(host(), requires=frozenset({"sse2"}))
    monkeypatch.setattr(library, "host", lambda: poorer)
    with pytest.raises(ps.CodegenError, match="needs .*which this host"):
        ps.load_kernel(exported / "libgmm.so")


def test_a_kernel_without_parallel_loops_needs_no_libgomp_and_a_scalar_has_rank_0(tmp_path):
    wl = ps.workloads.nrm(n=8, m=8)
    files = write_library(ps.lower(wl), tmp_path, name="norm8")
    assert not files.openmp
    header = files.header.read_text()
    assert "void norm8(const float *A, float *Y);" in header
    assert "#define NORM8_Y_RANK 0" in header and "NORM8_Y_SHAPE" not in header
    assert "no parallel loop" in header
    needed = subprocess.run(["ldd", str(files.library)], capture_output=True, text=True).stdout
    assert "libgomp" not in needed
    for compiler, flags in (("cc", ["-std=c99"]), ("c++", ["-x", "c++"])):
        if shutil.which(compiler):
            done = subprocess.run([compiler, *flags, "-fsyntax-only", "-Wall", "-Werror",
                                   str(files.header)], capture_output=True, text=True)
            assert done.returncode == 0, (compiler, done.stderr)
    a = np.arange(64, dtype=np.float32).reshape(8, 8) / 64
    (y,) = ps.load_kernel(files.library)(a)
    assert y.shape == () and np.isclose(y, np.sqrt((a.astype(np.float64) ** 2).sum()))


def test_the_python_api_exports_from_an_open_database_by_name(tmp_path):
    db = stored(tmp_path / "runs.db", seeds=(3,))
    with Database(db, readonly=True) as opened:
        done = ps.export(matmul(), tmp_path / "out", db=opened, name="matmul_32")
    assert done.name == "matmul_32" and done.max_abs_err < 1e-3
    assert done.files.library.name == "libmatmul_32.so"
    assert ps.load_kernel(done.files.library).signature.entry == "matmul_32"
    with pytest.raises(ps.ProbschedError, match="is not a C identifier"):
        ps.export(matmul(), tmp_path / "bad", db=db, name="no-dash")


def test_export_errors_are_one_line_and_exit_1(tmp_path):
    db = stored(tmp_path / "runs.db", seeds=(1,))
    other = cli("export", MATMUL, "--db", str(db), "-o", str(tmp_path / "k"))  # n=1024
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert "no correct record of workload gmm" in other.stderr
    missing = cli("export", MATMUL, "--db", str(tmp_path / "none.db"), *SMALL, "-o",
                  str(tmp_path / "k"))
    assert missing.returncode == 1 and "no such database" in missing.stderr
    bad = cli("export", str(tmp_path / "nope.sched"), "--db", str(db), "-o", str(tmp_path / "k"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "k").exists()
