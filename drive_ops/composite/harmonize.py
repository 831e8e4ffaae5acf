"""Harmonise a composited video: per-frame arguments, smoothed over time, applied in chunks.

Two sources of per-frame parameters, with one pipeline around them:
- the Harmonizer regressor (six filter arguments, docs/algorithms.md), when its weights are there;
- a weight-free fallback that moves the foreground's Lab mean and spread toward the
  background's, so the node still does something sensible without the non-commercial
  weights.
Either way the per-frame parameters go through the video EMA of Harmonizer's demo
(0.96 at 25 fps, i.e. a time constant of 25 frames at 25 fps) before being applied,
which is what keeps the colour from flickering.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..core.chunking import chunk_slices
from ..core.progress import Progress, notify, stage
from .color_filters import FILTER_NAMES, apply_filters
from .harmonizer_model import Harmonizer

REFERENCE_FPS = 25.0
DEFAULT_EMA = 0.96
# At strength 1 the fallback moves the foreground's statistics this far toward the
# background's: harmonise the tone, don't repaint the object in the background's colours.
LAB_TRANSFER = 0.5
LAB_SPREAD_LIMITS = (0.5, 2.0)


def ema_for_fps(ema_at_reference: float, fps: float) -> float:
    """The per-frame EMA factor with the same time constant as ``ema_at_reference`` at 25 fps."""
    if not 0.0 <= ema_at_reference < 1.0:
        raise ValueError(f"temporal smoothing must be in [0, 1), got {ema_at_reference}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return ema_at_reference ** (REFERENCE_FPS / fps) if ema_at_reference > 0 else 0.0


def smooth_arguments(values: torch.Tensor, ema: float) -> torch.Tensor:
    """EMA over frames of ``[T,K]`` values: ``s_0 = v_0``, ``s_t = ema*s_{t-1} + (1-ema)*v_t``."""
    out = values.clone()
    for t in range(1, values.shape[0]):
        out[t] = ema * out[t - 1] + (1.0 - ema) * values[t]
    return out


def lab_statistics(comp: torch.Tensor, mask: torch.Tensor, max_side: int = 512) -> torch.Tensor:
    """comp ``[B,3,H,W]``, mask ``[B,1,H,W]`` -> ``[B,12]``: Lab mean and std of fg, then of bg.

    Measured on every k-th pixel so at most ``max_side`` px remain on the longer side:
    subsampling (not averaging) keeps the per-pixel spread unbiased, and global
    statistics need no more; it keeps the fallback cheap at 1080p and up.
    Frames with no foreground or no background get bg statistics equal to fg's,
    which makes the match a no-op there.
    """
    from kornia.color import rgb_to_lab

    step = max(1, math.ceil(max(comp.shape[-2:]) / max_side))
    comp, mask = comp[..., ::step, ::step], mask[..., ::step, ::step]
    lab = rgb_to_lab(comp.float().clamp(0, 1))
    mask = mask.float()
    stats = []
    for weight in (mask, 1.0 - mask):
        total = weight.sum(dim=(2, 3))                                   # [B,1]
        mean = (lab * weight).sum(dim=(2, 3)) / total.clamp_min(1e-6)
        var = (((lab - mean[..., None, None]) ** 2) * weight).sum(dim=(2, 3)) / total.clamp_min(1e-6)
        stats.append((mean, var.clamp_min(0).sqrt(), total))
    (fg_mean, fg_std, fg_n), (bg_mean, bg_std, bg_n) = stats
    valid = (fg_n >= 1) & (bg_n >= 1)
    bg_mean = torch.where(valid, bg_mean, fg_mean)
    bg_std = torch.where(valid, bg_std, fg_std)
    return torch.cat([fg_mean, fg_std, bg_mean, bg_std], dim=1)


def apply_lab_match(comp: torch.Tensor, mask: torch.Tensor, stats: torch.Tensor, strength: float) -> torch.Tensor:
    """Move the foreground's Lab statistics toward the background's; ``[B,3,H,W]`` -> same.

    ``stats`` ``[B,12]`` as from ``lab_statistics`` (possibly smoothed over time);
    strength 1 moves them ``LAB_TRANSFER`` of the way, with the spread ratio limited
    to ``LAB_SPREAD_LIMITS``. Only the masked foreground changes.
    """
    from kornia.color import lab_to_rgb, rgb_to_lab

    stats = stats.to(device=comp.device, dtype=torch.float32)
    fg_mean, fg_std, bg_mean, bg_std = (s[..., None, None] for s in stats.split(3, dim=1))
    amount = LAB_TRANSFER * strength
    ratio = (bg_std / fg_std.clamp_min(1e-3)).clamp(*LAB_SPREAD_LIMITS)
    lab = rgb_to_lab(comp.float().clamp(0, 1))
    moved = fg_mean + amount * (bg_mean - fg_mean) + (lab - fg_mean) * (1.0 + amount * (ratio - 1.0))
    rgb = lab_to_rgb(moved, clip=True).clamp(0, 1).to(comp.dtype)
    mask = mask.to(comp.dtype)
    return rgb * mask + comp * (1.0 - mask)


def _chunk_on(frames: torch.Tensor, masks: torch.Tensor | None, sl: slice,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frames ``[T,H,W,C]`` / masks ``[T,H,W]`` slice -> contiguous ``[b,3,H,W]`` / ``[b,1,H,W]`` on ``device``.

    Contiguous channel-first is about twice as fast for the filters as a permuted view.
    """
    c = frames[sl, ..., :3].to(device).movedim(-1, 1).float().contiguous()
    return c, None if masks is None else masks[sl].to(device).unsqueeze(1).float()


def map_frames(frames: torch.Tensor, masks: torch.Tensor | None,
               fn: Callable[[torch.Tensor, torch.Tensor | None, slice], torch.Tensor],
               device: torch.device | None = None, chunk: int = 8, progress: Progress | None = None) -> torch.Tensor:
    """Apply ``fn(chw, mask, slice) -> chw`` chunk by chunk on ``device``; returns a new ``[T,H,W,C]``.

    Channels past the third (alpha) are copied through. ``progress(done, total)``
    after every chunk.
    """
    device = device or frames.device
    slices = chunk_slices(frames.shape[0], max(1, chunk))
    out = torch.empty_like(frames)
    for i, sl in enumerate(slices):
        c, m = _chunk_on(frames, masks, sl, device)
        out[sl, ..., :3] = fn(c, m, sl).movedim(1, -1).to(out.device, out.dtype)
        if frames.shape[-1] > 3:
            out[sl, ..., 3:] = frames[sl, ..., 3:]
        notify(progress, i + 1, len(slices))
    return out


def harmonize_video(comp: torch.Tensor, mask: torch.Tensor, model: Harmonizer | None = None,
                    strength: float = 1.0, ema: float = DEFAULT_EMA, device: torch.device | None = None,
                    chunk: int = 8, progress: Progress | None = None) -> tuple[torch.Tensor, dict]:
    """Harmonise ``[T,H,W,3]`` frames with masks ``[T,H,W]``; returns (frames like ``comp``, report).

    Pass 1 estimates per-frame parameters chunk by chunk on ``device`` (the regressor's
    arguments, or the Lab statistics without a model), pass 2 smooths them with
    ``ema`` (per frame; 0 = off), pass 3 applies them at full resolution. The report
    holds the per-frame parameters as plain lists (for the node's JSON output).
    ``progress(done, total)`` is called after every chunk of either pass.
    """
    if comp.dim() != 4 or mask.shape != comp.shape[:3]:
        raise ValueError(f"expected frames [T,H,W,3] and masks [T,H,W] of the same size, "
                         f"got {tuple(comp.shape)} and {tuple(mask.shape)}")
    device = device or comp.device
    slices = chunk_slices(comp.shape[0], max(1, chunk))
    total = 2 * len(slices)

    estimates = []
    for i, sl in enumerate(slices):
        c, m = _chunk_on(comp, mask, sl, device)
        estimates.append((model.predict_arguments(c, m) if model is not None else lab_statistics(c, m)).cpu())
        notify(progress, i + 1, total)
    raw = torch.cat(estimates)
    smoothed = smooth_arguments(raw, ema) if ema > 0 else raw.clone()
    applied = smoothed.clamp(-1, 1) * strength if model is not None else smoothed

    def restore(c: torch.Tensor, m: torch.Tensor, sl: slice) -> torch.Tensor:
        if model is not None:
            return apply_filters(c, m, applied[sl].to(device))
        return apply_lab_match(c, m, applied[sl].to(device), strength)

    out = map_frames(comp, mask, restore, device, chunk, stage(progress, len(slices), total))
    if model is not None:
        report = {"mode": "harmonizer", "filters": list(FILTER_NAMES), "ema": ema, "strength": strength,
                  "predicted": _rows(raw), "applied": _rows(applied)}
    else:
        report = {"mode": "lab_match", "ema": ema, "strength": strength,
                  "statistics": ["fg_L", "fg_a", "fg_b", "fg_std_L", "fg_std_a", "fg_std_b",
                                 "bg_L", "bg_a", "bg_b", "bg_std_L", "bg_std_a", "bg_std_b"],
                  "measured": _rows(raw), "applied": _rows(applied)}
    return out, report


def _rows(values: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 6) if math.isfinite(float(v)) else 0.0 for v in row] for row in values]
