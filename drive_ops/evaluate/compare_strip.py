"""Side-by-side comparison sheets: source | edited | mask overlay, one row per chosen frame."""

from __future__ import annotations

import torch

from ..core.mask_morphology import overlay_mask

DEFAULT_FRAMES = 4
OVERLAY_RGB = (1.0, 0.2, 0.2)


def parse_frame_indices(spec: str, frame_count: int) -> list[int]:
    """Frame numbers from a comma-separated string ("0, 8, -1"; negatives count from the end).

    An empty string picks up to ``DEFAULT_FRAMES`` frames spread evenly over the clip.
    Raises ``ValueError`` naming the valid range for anything else.
    """
    text = spec.strip()
    if not text:
        n = min(DEFAULT_FRAMES, frame_count)
        return sorted({round(i * (frame_count - 1) / max(n - 1, 1)) for i in range(n)})
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            idx = int(part)
        except ValueError:
            raise ValueError(f"frame index {part!r} is not a whole number; write e.g. \"0, 8, -1\"") from None
        if not -frame_count <= idx < frame_count:
            raise ValueError(f"frame {idx} does not exist: the clip has {frame_count} frames "
                             f"(use 0..{frame_count - 1}, or -1 for the last)")
        out.append(idx % frame_count)
    if not out:
        raise ValueError("no frame index given; write e.g. \"0, 8, -1\" or leave it empty for an even spread")
    return out


def compare_strip(source: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor | None,
                  frames: list[int], gap_px: int = 4) -> torch.Tensor:
    """One image ``[1,H',W',3]``: a row per frame of source | edited | mask overlay on the source.

    ``source`` and ``edited`` are ``[T,H,W,3]``, ``mask`` ``[T,H,W]`` (or None: two columns).
    Rows and columns are separated by ``gap_px`` white pixels.
    """
    src = source[frames, ..., :3].float()
    cols = [src, edited[frames, ..., :3].float().to(src.device)]
    if mask is not None:
        cols.append(overlay_mask(src, mask[frames].float().to(src.device), OVERLAY_RGB, opacity=0.5, outline=0))
    n, h, w = src.shape[:3]
    k = len(cols)
    sheet = torch.ones(n * h + (n - 1) * gap_px, k * w + (k - 1) * gap_px, 3, device=src.device)
    for r in range(n):
        for c, col in enumerate(cols):
            y, x = r * (h + gap_px), c * (w + gap_px)
            sheet[y:y + h, x:x + w] = col[r].clamp(0, 1)
    return sheet.unsqueeze(0)
