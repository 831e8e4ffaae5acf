"""Mask morphology every stage shares: grow / shrink, feather, and the tinted overlay.

Mask Tools, the composite and the metrics (the dilated background region) all grow a
mask through :func:`grow_mask`, so every node moves a mask edge by the same pixels.
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
