"""Benchmarks: numbers, not pass/fail. Run each from the repository root as a module, e.g.

    python -m bench.video_io --help

Shared helpers (paths, the peak-memory probe, clip loading) are in ``bench.common``.
"""
