"""The .sched grammar, shipped as package data (``sched.lark`` beside this file)."""

from importlib.resources import files

__all__ = ["grammar_text"]


def grammar_text() -> str:
    """Return the text of ``sched.lark``, the whole .sched language in one Lark grammar."""
    return files(__name__).joinpath("sched.lark").read_text(encoding="utf-8")
