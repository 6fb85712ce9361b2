"""Hypothesis strategies for the .sched language (re-exported by ``probsched.testing``).

``spaces()`` draws a whole module, a small matmul workload and a random well-formed space for
it: tilings by sampled factors, fixed splits, categorical choices, ``if`` on sampled values,
``for`` loops and calls of a rule; every one parses and runs legally on the workload.
"""

from __future__ import annotations

from hypothesis import strategies as st

_HEADER = """\
workload gmm(n = {n}, m = {m}, k = {k}):
    input A: float32[n, k]
    input B: float32[k, m]
    C[i, j] = sum(A[i, r] * B[r, j])

def tile(loop, inner = 4):
    factors = sample_perfect_tile(loop, n=2, max_innermost_factor=inner)
    return split(loop, factors)

space random for gmm:
    c = get_block("C")
    i, j, r = get_loops(c)
"""


@st.composite
def spaces(draw, max_steps: int = 8) -> str:
    """The text of a module: workload ``gmm`` (small random extents) and space ``random``."""
    n, m, k = (draw(st.sampled_from([4, 6, 8, 12, 16, 24])) for _ in range(3))
    loops = ["i", "j", "r"]  # live loops, outermost first
    lines: list[str] = []
    fresh = iter(range(10_000))
    for _ in range(draw(st.integers(0, max_steps))):
        step = draw(st.sampled_from(["tile", "split", "if", "for", "categorical", "annotate"]))
        pos = draw(st.integers(0, len(loops) - 1))
        loop, u = loops[pos], next(fresh)
        if step == "tile":
            inner = draw(st.sampled_from([1, 2, 4, 8]))
            lines.append(f"a{u}, b{u} = tile({loop}, {inner})")
            loops[pos:pos + 1] = [f"a{u}", f"b{u}"]
        elif step == "split":
            factor = draw(st.sampled_from([1, 2, 3, 4]))
            lines.append(f"a{u}, b{u} = split({loop}, [None, {factor}])")
            loops[pos:pos + 1] = [f"a{u}", f"b{u}"]
        elif step == "if":
            bound = draw(st.integers(1, 4))
            lines += [
                f"t{u} = sample_perfect_tile({loop}, n=2, max_innermost_factor=4)",
                f"if t{u}[1] > {bound}:",
                f"    annotate({loop}, \"big\", t{u}[1])",
                f"elif t{u}[0] == 1 or not t{u}[1] >= 2:",
                f"    annotate({loop}, \"small\", t{u}[0] * 2 - 1)",
                "else:",
                "    pass",
            ]
        elif step == "for":
            chosen = draw(st.lists(st.sampled_from(loops), min_size=1, max_size=3))
            lines += [
                f"for x{u} in [{', '.join(chosen)}]:",
                f"    annotate(x{u}, \"seen\", len([{', '.join(chosen)}]))",
            ]
        elif step == "categorical":
            lines += [
                f"v{u} = sample_categorical([1, 2, 4], [0.5, 0.25, 0.25])",
                f"annotate({loop}, \"cat\", v{u})",
            ]
        else:
            lines.append(f"annotate({loop}, \"note\", {draw(st.integers(0, 99))})")
    if len(loops) > 1 and draw(st.booleans()):
        lines.append(f"reorder({', '.join(draw(st.permutations(loops)))})")
    body = "".join(f"    {line}\n" for line in lines)
    return _HEADER.format(n=n, m=m, k=k) + body
