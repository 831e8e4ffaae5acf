"""Morphology on video masks ``[T,H,W]``: grow, shrink and feather.

Shared by the mask tools, the composite and the metrics (dilated background region),
so every node grows a mask by the same pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _disk(radius: int, device: torch.device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius + 1e-6).float()


def grow_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Dilate (``pixels > 0``) or erode (``pixels < 0``) ``[T,H,W]`` masks with a disk.

    Grey-level morphology (max / min over the disk), so soft masks stay soft.
    Computed as a max-pool over the disk's offsets, which is exact and keeps memory
    at two frames' worth per offset row.
    """
    if pixels == 0:
        return mask.clone()
    radius = abs(int(pixels))
    x = mask.float() if pixels > 0 else 1.0 - mask.float()
    disk = _disk(radius, x.device)
    padded = F.pad(x.unsqueeze(1), (radius, radius, radius, radius), value=0.0).squeeze(1)
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for dy in range(2 * radius + 1):
        cols = disk[dy].nonzero().flatten()
        lo, hi = int(cols.min()), int(cols.max())
        row = padded[:, dy:dy + h]
        # the disk's row is one contiguous run [lo, hi]: a 1-D max-pool covers it
        run = F.max_pool1d(row.reshape(-1, 1, row.shape[-1]), kernel_size=hi - lo + 1, stride=1)
        out = torch.maximum(out, run.reshape(x.shape[0], h, -1)[..., lo:lo + w])
    out = out if pixels > 0 else 1.0 - out
    return out.to(mask.dtype)


def feather_mask(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Gaussian-blur ``[T,H,W]`` masks (sigma = radius / 2) for soft seams; 0 returns a copy."""
    if radius <= 0:
        return mask.clone()
    sigma = radius / 2.0
    k = int(2 * round(radius) + 1)
    t = torch.arange(k, device=mask.device, dtype=torch.float32) - k // 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    x = mask.float().unsqueeze(1)
    x = F.pad(x, (k // 2, k // 2, 0, 0), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, k))
    x = F.pad(x, (0, 0, k // 2, k // 2), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return x.squeeze(1).clamp(0, 1).to(mask.dtype if mask.is_floating_point() else torch.float32)


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


def overlay_mask(frames: torch.Tensor, mask: torch.Tensor, color: tuple[float, float, float] = (1.0, 0.2, 0.2),
                 opacity: float = 0.5, outline: int = 2) -> torch.Tensor:
    """Frames ``[T,H,W,3]`` with ``mask`` ``[T,H,W]`` tinted in ``color`` and its edge outlined.

    The tint blends ``opacity * mask`` of the colour in; the outline (``outline`` px
    inside the edge, 0 for none) is drawn opaque so thin or faint masks stay visible.
    """
    m = mask.to(frames.device, torch.float32).clamp(0, 1)[..., None]
    c = torch.tensor(color, dtype=frames.dtype, device=frames.device)
    out = frames * (1 - opacity * m) + c * (opacity * m)
    if outline > 0:
        binary = (mask > 0.5).float()
        edge = (binary - grow_mask(binary, -outline)).to(frames.device)[..., None]
        out = out * (1 - edge) + c * edge
    return out.clamp(0, 1)
