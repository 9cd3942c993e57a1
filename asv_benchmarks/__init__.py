"""asv benchmarks for Cascade, written against the public ``cascade`` API only so older commits run too.

Module names deliberately avoid pytest's ``test_*.py`` pattern; nothing here is collected by pytest.
Where a commit lacks a feature, ``setup`` raises ``NotImplementedError`` and asv skips the benchmark.
"""
