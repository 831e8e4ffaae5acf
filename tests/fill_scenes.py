"""Synthetic clips for Fill Background: a known background, a moving camera, a moving object.

The background is a band-limited colour texture defined in world coordinates (sums of
sinusoids, periods 12-40 px), so every frame, and the background behind the object, is
known exactly at any sub-pixel camera position. The object is a hard-edged red disc,
so its mask is exact. ``unseen`` is the ground truth of what no frame shows at pixel
resolution: a hole pixel whose world point, in every frame, falls off the frame or on
a masked pixel (the nearest pixel of its position there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_WAVES = ((0.21, 0.05, 0.0, 0.12), (-0.07, 0.17, 1.0, 0.10), (0.11, -0.13, 2.0, 0.08), (0.03, 0.09, 0.5, 0.12))


@dataclass
class FillScene:
    frames: torch.Tensor      # [T,H,W,3] the clip with the object
    background: torch.Tensor | None  # [T,H,W,3] the same clip without it (with_truth)
    masks: torch.Tensor              # [T,H,W] the object, exact
    unseen: torch.Tensor | None      # [T,H,W] bool: hole pixels no frame shows (with_truth)


def background_texture(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Colour ``[...,3]`` of the world texture at world positions ``ys, xs``."""
    channels = []
    for c in range(3):
        v = torch.full_like(xs, 0.45 + 0.05 * c)
        for i, (kx, ky, phase, amp) in enumerate(_WAVES):
            v = v + amp * torch.sin(kx * xs * (1 + 0.1 * c) + ky * ys + phase + c * (i + 1))
        channels.append(v)
    return torch.stack(channels, -1).clamp(0, 1)


def make_scene(frames: int = 12, height: int = 96, width: int = 128, camera: tuple[float, float] = (0.7, 0.35),
               velocity: tuple[float, float] = (1.3, 0.4), radius: float = 16.0,
               start: tuple[float, float] = (50.0, 40.0), with_truth: bool = True) -> FillScene:
    """A pan of ``camera`` px/frame (x, y) over the texture, a disc of ``radius`` moving ``velocity`` px/frame in the world.

    ``with_truth`` also keeps the background clip and computes ``unseen`` (off for benchmarks: it is O(T^2)).
    """
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    clip = torch.empty(frames, height, width, 3)
    masks_t = torch.empty(frames, height, width)
    truth = torch.empty(frames, height, width, 3) if with_truth else None
    for t in range(frames):
        wx, wy = xs + camera[0] * t, ys + camera[1] * t
        cx, cy = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        inside = (wx - cx) ** 2 + (wy - cy) ** 2 < radius ** 2
        bg = background_texture(wy, wx)
        red = torch.stack([0.9 + 0.05 * torch.sin(wx / 3), 0.15 + 0.1 * torch.cos(wy / 4), torch.full_like(wx, 0.1)], -1)
        clip[t] = torch.where(inside[..., None], red, bg)
        masks_t[t] = inside.float()
        if truth is not None:
            truth[t] = bg
    unseen = None
    if with_truth:
        unseen = torch.zeros(frames, height, width, dtype=torch.bool)
        for t in range(frames):
            seen = torch.zeros(height, width, dtype=torch.bool)
            for s in range(frames):
                sx = (xs + camera[0] * (t - s)).round()
                sy = (ys + camera[1] * (t - s)).round()
                on_frame = (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
                hidden = masks_t[s][sy.clamp(0, height - 1).long(), sx.clamp(0, width - 1).long()] > 0.5
                seen |= on_frame & ~hidden
            unseen[t] = ~seen & (masks_t[t] > 0.5)
    return FillScene(clip, truth, masks_t, unseen)


def scaled_scene(frames: int, height: int, width: int, with_truth: bool = False) -> FillScene:
    """The same pan-and-disc scene laid out for ``height x width``: sizes scale with ``min(H, W) / 96``.

    The camera pans 0.7/4 and the disc moves 1.3/2 px per frame per unit of scale, so over a
    few dozen frames part of the background behind the disc is uncovered and part never is.
    """
    scale = min(height, width) / 96
    return make_scene(frames=frames, height=height, width=width, camera=(0.7 * scale / 4, 0.35 * scale / 4),
                      velocity=(1.3 * scale / 2, 0.4 * scale / 2), radius=16.0 * scale,
                      start=(width * 0.3, height * 0.42), with_truth=with_truth)
