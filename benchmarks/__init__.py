"""The benchmarks, each run from the repository root as ``python -m benchmarks.NAME``
(``--help`` for its flags); the modules whose names start with ``_`` are their
shared parts, not commands."""
