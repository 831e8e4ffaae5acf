"""Harmonise a composited video: per-frame arguments, smoothed over time, applied in chunks.

With the Harmonizer regressor (its weights, harmonizer.pth) the pipeline is: the regressor's six
filter arguments per frame (docs/algorithms.md), the video EMA of Harmonizer's demo (0.96 at
25 fps, i.e. a time constant of 25 frames at 25 fps, which keeps the colour from flickering),
then the filters inside the mask.

Without weights the frames pass through unchanged. No weight-free rule measured here tells a
colour cast from an edit that is already right (bench/harmonize_fallback.py, 24 world-rendered
perfect recolours and the six-clip cast of tests/test_quality_harmonize.py, mean CIE76 dE):
moving the object's Lab statistics halfway to the background's shifted perfect edits by 46.3 and
raised the cast from 41.2 to 51.0; the six filters fitted toward the background within +-0.02
shifted perfect edits by 6.2 and left the cast at 40.9; a 1-3 px seam-band match shifted them by
10-27 and raised the cast. Passing through shifts a perfect edit by 0 and leaves a cast as it is.
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
PASS_THROUGH_NOTE = ("no Harmonizer connected, so the frames pass through unchanged (no weight-free rule tells a "
                     "colour cast from a correct edit); to harmonise, put harmonizer.pth (ZHKKKe/Harmonizer, "
                     "CC BY-NC-SA 4.0) in models/harmonizer and connect Load Harmonizer")


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

    With ``model``: pass 1 predicts the arguments chunk by chunk on ``device``, pass 2 smooths
    them with ``ema`` (per frame; 0 = off), pass 3 applies them at full resolution. The report
    holds the per-frame arguments as plain lists (for the node's JSON output). Without a model
    the result is a copy of ``comp`` and the report says why (``PASS_THROUGH_NOTE``).
    ``progress(done, total)`` is called after every chunk of either pass.
    """
    if comp.dim() != 4 or mask.shape != comp.shape[:3]:
        raise ValueError(f"expected frames [T,H,W,3] and masks [T,H,W] of the same size, "
                         f"got {tuple(comp.shape)} and {tuple(mask.shape)}")
    if model is None:
        notify(progress, 1, 1)
        return comp.clone(), {"mode": "pass_through", "strength": strength, "ema": ema, "note": PASS_THROUGH_NOTE}
    device = device or comp.device
    slices = chunk_slices(comp.shape[0], max(1, chunk))
    total = 2 * len(slices)

    estimates = []
    for i, sl in enumerate(slices):
        c, m = _chunk_on(comp, mask, sl, device)
        estimates.append(model.predict_arguments(c, m).cpu())
        notify(progress, i + 1, total)
    raw = torch.cat(estimates)
    smoothed = smooth_arguments(raw, ema) if ema > 0 else raw.clone()
    applied = smoothed.clamp(-1, 1) * strength

    def restore(c: torch.Tensor, m: torch.Tensor, sl: slice) -> torch.Tensor:
        return apply_filters(c, m, applied[sl].to(device))

    out = map_frames(comp, mask, restore, device, chunk, stage(progress, len(slices), total))
    report = {"mode": "harmonizer", "filters": list(FILTER_NAMES), "ema": ema, "strength": strength,
              "predicted": _rows(raw), "applied": _rows(applied)}
    return out, report


def _rows(values: torch.Tensor) -> list[list[float]]:
    return [[round(float(v), 6) if math.isfinite(float(v)) else 0.0 for v in row] for row in values]
