"""Clean-ups of video masks ``[T,H,W]``: fill holes, drop islands, temporal smoothing, and the Mask Tools chain.

Growing, shrinking and feathering are shared with the other stages and live in
``core.mask_morphology``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.mask_morphology import feather_mask, grow_mask


def fill_holes(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Fill the holes of binary ``[T,H,W]`` masks: background regions not touching the border.

    Returns float 0/1 masks (``mask > threshold`` with enclosed background set to 1).
    """
    import cv2
    import numpy as np

    out = []
    for frame in (mask > threshold).cpu().numpy():
        bg = (~frame).astype(np.uint8)
        count, labels = cv2.connectedComponents(bg, connectivity=4)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        holes = (labels > 0) & ~np.isin(labels, border)
        out.append(torch.from_numpy(frame | holes))
    return torch.stack(out).to(mask.device, torch.float32)


def remove_small_regions(mask: torch.Tensor, min_area: int, threshold: float = 0.5) -> torch.Tensor:
    """Drop foreground islands smaller than ``min_area`` pixels from binary ``[T,H,W]`` masks."""
    import cv2
    import numpy as np

    out = []
    for frame in (mask > threshold).cpu().numpy().astype(np.uint8):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(frame, connectivity=8)
        keep = np.zeros(count, dtype=bool)
        keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
        out.append(torch.from_numpy(keep[labels]))
    return torch.stack(out).to(mask.device, torch.float32)


def temporal_smooth(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Average ``[T,H,W]`` masks over ``2*radius+1`` neighbouring frames (edges replicate).

    Flicker in a tracker's masks shows up as single-frame blips; a temporal box filter
    (then threshold, for a binary result) removes them. ``radius`` 0 returns a copy.
    """
    if radius <= 0 or mask.shape[0] == 1:
        return mask.clone()
    x = mask.float().permute(1, 2, 0).reshape(-1, 1, mask.shape[0])
    x = F.pad(x, (radius, radius), mode="replicate")
    x = F.avg_pool1d(x, 2 * radius + 1, stride=1)
    return x.reshape(mask.shape[1], mask.shape[2], -1).permute(2, 0, 1).contiguous()


def refine_mask(mask: torch.Tensor, threshold: float | None = None, fill: bool = False, min_area: int = 0,
                temporal_radius: int = 0, grow: int = 0, feather: float = 0.0, invert: bool = False) -> torch.Tensor:
    """The Mask Tools chain on ``[T,H,W]`` masks, in a fixed order that keeps each step meaningful.

    threshold (binarise) -> fill holes -> drop islands under ``min_area`` -> temporal
    smoothing (re-binarised at 0.5 when the mask was binarised) -> grow/shrink ->
    feather -> invert. Clean-ups that need a binary mask binarise at ``threshold`` or 0.5.
    Returns float32 in 0..1; the input is not modified.
    """
    out = mask.float().clone()
    binary = threshold is not None
    if binary:
        out = (out > threshold).float()
    level = threshold if binary else 0.5
    if fill:
        out, binary, level = fill_holes(out, level), True, 0.5
    if min_area > 0:
        out, binary, level = remove_small_regions(out, min_area, level), True, 0.5
    if temporal_radius > 0:
        out = temporal_smooth(out, temporal_radius)
        if binary:
            out = (out > 0.5).float()
    if grow:
        out = grow_mask(out, grow)
    if feather > 0:
        out = feather_mask(out, feather)
    if invert:
        out = 1.0 - out
    return out.clamp(0, 1)
