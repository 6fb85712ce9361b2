"""Damaging database files and listing what lies beside them, for the database tests."""

from __future__ import annotations

import random


def damage(path, seed=0):
    """Random bytes over the page in the middle of ``path``."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 4096 // 2 * 4096
    data[middle:middle + 4096] = random.Random(seed).randbytes(4096)
    path.write_bytes(bytes(data))


def beside(path):
    """The names of the files in ``path``'s folder (``-wal``/``-shm`` files left show)."""
    return sorted(p.name for p in path.parent.iterdir())
