"""Splitting a frame or grid count into consecutive chunks: every long loop bounds its memory this way."""

from __future__ import annotations


def chunk_slices(count: int, per_chunk: int) -> list[slice]:
    """Consecutive slices of at most ``per_chunk`` items covering ``range(count)``."""
    if per_chunk < 1:
        raise ValueError(f"chunks need at least one item, got {per_chunk}")
    return [slice(i, min(i + per_chunk, count)) for i in range(0, count, per_chunk)]


def chunks_outward(count: int, per_chunk: int, anchor: int) -> list[slice]:
    """Chunks of at most ``per_chunk`` covering ``range(count)``, in the order a sequential pass outward
    from ``anchor`` meets them: ``anchor`` onward first, then the frames before it, nearest chunk first.

    Cross-frame attention runs chunks in this order, so every frame's anchor and its
    neighbour toward the anchor are computed before (or with) the frame itself.
    """
    if not 0 <= anchor < count:
        return chunk_slices(count, per_chunk)
    ahead = [slice(s.start + anchor, s.stop + anchor) for s in chunk_slices(count - anchor, per_chunk)]
    behind = [slice(max(stop - per_chunk, 0), stop) for stop in range(anchor, 0, -per_chunk)]
    return ahead + behind
