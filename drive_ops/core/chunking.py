"""Splitting a frame or grid count into consecutive chunks: every long loop bounds its memory this way."""

from __future__ import annotations


def chunk_slices(count: int, per_chunk: int) -> list[slice]:
    """Consecutive slices of at most ``per_chunk`` items covering ``range(count)``."""
    if per_chunk < 1:
        raise ValueError(f"chunks need at least one item, got {per_chunk}")
    return [slice(i, min(i + per_chunk, count)) for i in range(0, count, per_chunk)]
