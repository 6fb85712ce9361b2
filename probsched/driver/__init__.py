"""What a user runs, on top of everything else: the Python conveniences (``api``: compile,
measure, reference), the ``probsched`` command (``cli``, with ``run`` behind ``probsched
run``) and the benchmark suites (``bench/``)."""
