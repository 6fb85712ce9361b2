"""The Target value: read from the host once, passed down explicitly, and code for a narrower
target builds and runs on this host (e.g. AVX2 code on an AVX-512 machine)."""

import re

import numpy as np
import pytest

import probsched as ps
from probsched.errors import CodegenError, ProbschedError
from probsched.ir import lower
from probsched.ir.program import LoopKind
from probsched.target import CpuTarget, cpu_target, host, resolve

WL = ps.workloads.gmm(b=1, n=16, m=64, k=16)


def _vector_schedule(target) -> ps.Schedule:
    """j split by the target's lanes and vectorized: the code uses the target's registers."""
    sch = ps.Schedule(WL, target=target)
    _, _, j, k = sch.get_loops(sch.get_block("C"))
    _, ji = sch.split(j, [None, sch.vector_lanes()])
    sch.reorder(k, ji)
    sch.vectorize(ji)
    return sch


def _registers(asm: str) -> set[str]:
    return set(re.findall(r"%([xyz])mm\d+", asm))


def test_host_is_read_once_and_is_the_default():
    h = host()
    assert resolve(None) is h and resolve("host") is h and resolve("cpu") is h
    assert h.cores >= 1 and h.vector_bits in (128, 256, 512)
    assert 0 < h.l1d_bytes <= h.l2_bytes <= h.l3_bytes
    assert h.vector_lanes() == h.vector_bits // 32 and h.vector_lanes("float64") * 2 == (
        h.vector_lanes())
    assert h.vector_registers == (32 if "avx512f" in h.requires else 16)
    assert h.missing_on(h) == []


def _narrower_than_host() -> CpuTarget:
    """AVX2 code where the host has AVX-512, SSE4.2 code where it has only AVX2."""
    return cpu_target("x86-64-v3" if host().vector_bits >= 512 else "x86-64-v2")


@pytest.mark.skipif(not host().triple.startswith("x86_64"), reason="x86-64 levels only")
def test_code_for_a_narrower_target_builds_and_runs_here():
    target = _narrower_than_host()
    sch = _vector_schedule(target)
    assert sch.vector_lanes() == target.vector_bits // 32
    kernel = ps.compile(sch, keep_text=True)  # built for the schedule's target
    widest = {128: "x", 256: "y", 512: "z"}
    regs = _registers(kernel.asm)
    assert widest[target.vector_bits] in regs
    assert not regs - set("xyz"[: "xyz".index(widest[target.vector_bits]) + 1])
    a = np.random.default_rng(0).standard_normal((1, 16, 16)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((1, 16, 64)).astype(np.float32)
    (c,) = kernel(a, b)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    # the same schedule through the isolated builder and runner
    res = ps.measure(sch)
    assert res.correct, res.error


def test_host_code_uses_the_hosts_widest_vectors():
    kernel = ps.compile(_vector_schedule(None), keep_text=True)
    widest = {128: "x", 256: "y", 512: "z"}[host().vector_bits]
    assert widest in _registers(kernel.asm)


@pytest.mark.skipif("avx512f" in host().requires or not host().triple.startswith("x86_64"),
                    reason="the host runs AVX-512 code")
def test_code_the_host_cannot_run_is_built_but_refused_at_load():
    target = cpu_target("x86-64-v4")
    artifact = ps.codegen.build(lower(WL), target=target)  # building is fine anywhere
    with pytest.raises(CodegenError, match="avx512f.*lacks"):
        ps.codegen.load_object(artifact.object_code, artifact.signature, target=target)


def test_space_queries_read_the_schedules_target():
    mod = ps.parse("""
workload add(n = 64):
    input A: float32[n]
    B[i] = A[i] + 1.0

space by_lanes for add:
    i = get_loops(get_block("B"))[0]
    io, ii = split(i, [None, vector_lanes()])
    vectorize(ii)
    assert_cores = num_cores() + vector_registers() + cache_bytes(1)
""")
    for name in ("x86-64-v2", "x86-64-v3"):
        target = cpu_target(name)
        sch = ps.Schedule(mod.workload(), target=target)
        mod.space().apply(sch)
        assert sch.loop_extent(sch.get_loops(sch.get_block("B"))[1]) == target.vector_lanes()
        assert sch.cache_bytes(1) == host().l1d_bytes and sch.num_cores() == host().cores


def test_unknown_targets_and_cache_levels_are_clear_errors():
    with pytest.raises(ProbschedError, match="unknown CPU target 'avx9'.*x86-64-v3"):
        resolve("avx9")
    with pytest.raises(ProbschedError, match="level must be 1, 2 or 3"):
        host().cache_bytes(4)
    with pytest.raises(ProbschedError, match="not a target"):
        resolve(42)


def test_records_are_keyed_by_target(tmp_path):
    from probsched.measure import RunResult
    from probsched.search.database import Database

    narrow = _narrower_than_host()
    assert narrow.key != host().key
    sch = ps.Schedule(WL, target=narrow)
    with Database(tmp_path / "t.db") as db:
        db.add_record(WL, sch.trace, RunResult(True, 1e-3, 1e-3, (1e-3,)), target=narrow.key)
        assert len(db.records(WL, target=narrow.key)) == 1
        assert db.records(WL, target=host().key) == []


def test_schedules_copy_and_replay_keep_their_target():
    target = _narrower_than_host()
    sch = _vector_schedule(target)
    assert sch.copy().target is target
    assert sch.trace.replay(WL, target=target).target is target
    assert LoopKind.VECTORIZED.value in str(sch.program)


def test_cuda_targets_are_named_descriptions_beside_the_cpu():
    from probsched.target import CudaTarget, resolve

    t = resolve("cuda")
    assert isinstance(t, CudaTarget) and t.kind == "cuda" and t is resolve("cuda:sm_90")
    assert t.compute_capability == (9, 0) and t.max_threads_per_block == 1024
    assert t.key != resolve("sm_80").key and "sm_90" in t.describe()
    assert 60e12 < t.peak_fp32_flops() < 70e12  # 132 SMs x 128 lanes x 2 x 1.98 GHz
    with pytest.raises(ps.ProbschedError, match="unknown CUDA target 'sm_1'; known: sm_90"):
        resolve("sm_1")
