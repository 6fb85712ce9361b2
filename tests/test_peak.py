"""The FMA peak microkernel: really FMA on the target's widest vectors, timed on one and on
every core (a figure, not asserted beyond sanity)."""

import math
import re

import pytest

from probsched.codegen import machine
from probsched.measure.peak import _ir, fma_peak
from probsched.target import cpu_target, host


@pytest.mark.parametrize("name", ["host", "x86-64-v2"])
def test_the_microkernel_is_fma_on_the_targets_vectors(name):
    if name != "host" and not host().triple.startswith("x86_64"):
        pytest.skip("x86-64 levels only")
    target = cpu_target(name)
    asm = machine.emit_assembly(machine.optimize(_ir(target, 12), target), target)
    width = {128: "xmm", 256: "ymm", 512: "zmm"}[target.vector_bits]
    fmas = re.findall(r"\bv?fmadd\w*\s+%?(\w+)", asm) or re.findall(r"\bfmla\b", asm)
    if "fma" in target.requires:  # x86-64-v2 has none: mul and add instead
        assert fmas, "no FMA instructions in the microkernel"
    if fmas and width != "xmm":
        assert any(width in line for line in asm.splitlines() if "fmadd" in line)


def test_peak_figures_are_sane():
    p = fma_peak(seconds=0.05)
    # Positive and finite only: on a shared machine all cores may time below one (a timing
    # comparison would be a timed test; the bench reports the figures).
    assert 0 < p.one_core_gflops < math.inf and 0 < p.all_cores_gflops < math.inf
    assert p.cores == host().cores and p.share(p.all_cores_gflops) == pytest.approx(1.0)
