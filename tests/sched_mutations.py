"""Mutations of .sched files for fuzzing: deterministic (a seeded ``random.Random``), aimed at
what broke the tool before (deep nesting, huge numbers, long lines, keywords as names, odd
bytes, repeated lines) as well as plain token edits.
"""

from __future__ import annotations

import random
import re

VOCABULARY = [
    "(", ")", "[", "]", ",", ":", "=", "==", "<", "+", "-", "*", "//", "%", "not", "and", "or",
    "if", "for", "in", "def", "return", "space", "workload", "input", "require", "over", "use",
    "pass", "None", "True", "0", "1", "-1", "8", "1000000000000000000000000000000",
    "1000000000000000003", "4294967296", "1e999", '"C"', '""', "range(100000)", "split",
    "sample_perfect_tile", "get_loops", "get_block", "len", "\\", "#", "\t", "\ufeff", "\x00",
    "\r",
]
NUMBERS = ["0", "-1", "1", "2", "7", "63", "64", "65", "2147483647", "4294967296",
           "1099511627777", "1000000000000000003", "1000000000000000000000000000000"]
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def mutate(rng: random.Random, text: str, others: list[str]) -> str:
    """``text`` with 1 to 4 mutations; ``others`` are texts lines may be taken from."""
    for _ in range(rng.randint(1, 4)):
        text = rng.choice(_MUTATIONS)(rng, text, others)
    return text


def _tokens(rng: random.Random, text: str, others: list[str]) -> str:
    tokens = _TOKEN.findall(text) or [""]
    k = rng.randrange(len(tokens))
    kind = rng.choice(["delete", "duplicate", "swap", "insert", "replace"])
    if kind == "delete":
        del tokens[k]
    elif kind == "duplicate":
        tokens.insert(k, tokens[k])
    elif kind == "swap" and k + 1 < len(tokens):
        tokens[k], tokens[k + 1] = tokens[k + 1], tokens[k]
    elif kind == "insert":
        tokens.insert(k, rng.choice(VOCABULARY))
    else:
        tokens[k] = rng.choice(VOCABULARY)
    return "".join(tokens)


def _number(rng: random.Random, text: str, others: list[str]) -> str:
    spots = [m.span() for m in re.finditer(r"(?<![\w.])\d+(?![\w.])", text)]
    if not spots:
        return text
    a, b = rng.choice(spots)
    return text[:a] + rng.choice(NUMBERS) + text[b:]


def _lines(rng: random.Random, text: str, others: list[str]) -> str:
    lines = text.split("\n")
    k = rng.randrange(len(lines))
    kind = rng.choice(["repeat", "indent", "dedent", "splice", "drop"])
    if kind == "repeat":
        lines[k:k + 1] = [lines[k]] * rng.choice([2, 10, 300, 3000])
    elif kind == "indent":
        lines[k] = rng.choice(["    ", "\t", " ", "        "]) + lines[k]
    elif kind == "dedent":
        lines[k] = lines[k].lstrip()
    elif kind == "splice":
        donor = rng.choice(others).split("\n")
        lines.insert(k, rng.choice(donor))
    else:
        del lines[k]
    return "\n".join(lines)


def _nest(rng: random.Random, text: str, others: list[str]) -> str:
    """Wrap a right side in many calls, brackets or operators, or repeat a term."""
    spots = [m.end() for m in re.finditer(r"(?<![=<>!])=(?!=) ", text)]
    if not spots:
        return text
    at = rng.choice(spots)
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    value = text[at:end]
    depth = rng.choice([5, 99, 101, 150, 300, 1000])
    shape = rng.choice(["len", "list", "neg", "chain", "paren", "select"])
    if shape == "len":
        value = "len([" * depth + value + "])" * depth
    elif shape == "list":
        value = "[" * depth + value + "]" * depth
    elif shape == "neg":
        value = "- " * depth + value
    elif shape == "chain":
        value = " + ".join([value] * depth)
    elif shape == "paren":
        value = "(" * depth + value + ")" * depth
    else:
        value = "select(i > 0, " * depth + value + ", 0.0)" * depth
    return text[:at] + value + text[end:]


def _bytes(rng: random.Random, text: str, others: list[str]) -> str:
    k = rng.randrange(len(text) + 1)
    odd = rng.choice(["\ufeff", "\x00", "\r", "\r\n", "é", "\u202e", "\t", "\\\n", "'", '"'])
    return (odd + text) if rng.random() < 0.3 else text[:k] + odd + text[k:]


_MUTATIONS = [_tokens, _tokens, _tokens, _number, _lines, _nest, _bytes]
