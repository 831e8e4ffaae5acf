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
