"""Placeholder; being written."""


def _todo(*args, **kwargs):
    raise ValueError("not implemented yet")


decompose_reduction = rfactor = _todo
