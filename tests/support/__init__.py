"""vidspan's test infrastructure: fake provider servers, tiny random checkpoints, generated clips.

Importable as ``support`` because pytest puts ``tests/`` on the path (``pythonpath`` in pyproject.toml);
benchmarks add it themselves. None of it is installed with vidspan.
"""
