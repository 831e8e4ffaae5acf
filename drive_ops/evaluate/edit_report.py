"""One report of an edit: every per-frame metric curve plus the headline numbers.

Feeds DRIVE_EditReport (summary text, FLOAT outputs) and the plot renderer. Built on
drive_ops.evaluate.metrics; the CLIP embeddings, when given, are computed by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import metrics
from ..core.progress import Progress, notify, stage
from ..core.validate import IMAGE_HINT, check_finite

CLIP_ABSENT = -1.0
"""Sentinel for CLIP-T / CLIP-F when no CLIP model was given (real scores are cosines ×100 > -100,
so callers must test for this exact value, not for negatives)."""


@dataclass
class EditReport:
    """Per-frame curves (``[T]`` or ``[T-1]`` for frame pairs) and the inputs' description."""

    frames: int
    has_mask: bool
    dilation_px: int
    background: metrics.BackgroundScores
    warp_error: torch.Tensor  # [T-1] edited clip
    warp_error_source: torch.Tensor  # [T-1] source clip: the flow's own error floor
    warp_ssim: torch.Tensor  # [T]
    flicker: metrics.Flicker
    clip_t: torch.Tensor | None = None  # [T]
    clip_f: torch.Tensor | None = None  # [T]

    @property
    def bg_psnr(self) -> float:
        return _mean(self.background.psnr)

    @property
    def bg_ssim(self) -> float:
        return _mean(self.background.ssim)

    @property
    def mean_warp_error(self) -> float:
        return _mean(self.warp_error)

    @property
    def mean_warp_error_source(self) -> float:
        return _mean(self.warp_error_source)

    @property
    def mean_warp_ssim(self) -> float:
        """×100, as RAVE reports WarpSSIM."""
        return 100.0 * _mean(self.warp_ssim)

    @property
    def object_seen(self) -> bool:
        """Whether any frame pair has pixels inside the mask (an empty mask has no object to measure)."""
        return bool((~torch.isnan(self.flicker.edited_inside)).any())

    @property
    def flicker_ratio(self) -> float:
        """Edited vs source frame-to-frame change inside the object (whole frame without a mask or object)."""
        if self.object_seen:
            return _ratio(self.flicker.edited_inside, self.flicker.source_inside)
        return _ratio(self.flicker.edited_frame, self.flicker.source_frame)

    @property
    def flicker_ratio_outside(self) -> float:
        return _ratio(self.flicker.edited_outside, self.flicker.source_outside)

    @property
    def clip_text(self) -> float:
        return CLIP_ABSENT if self.clip_t is None else _mean(self.clip_t)

    @property
    def clip_frame(self) -> float:
        return CLIP_ABSENT if self.clip_f is None else _mean(self.clip_f)


def _mean(x: torch.Tensor) -> float:
    """Mean over the defined (non-NaN) entries; ``inf`` stays ``inf``; NaN only if none is defined."""
    x = x.detach().float().cpu()
    ok = ~torch.isnan(x)
    return float(x[ok].mean()) if ok.any() else math.nan


def _ratio(edited: torch.Tensor, source: torch.Tensor) -> float:
    e, s = _mean(edited), _mean(source)
    if math.isnan(e) or math.isnan(s):
        return math.nan
    return float(metrics.flicker_ratio(torch.tensor(e), torch.tensor(s)))


def build_report(source: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor | None = None,
                 dilation_px: int = 7, image_embeds: torch.Tensor | None = None,
                 text_embed: torch.Tensor | None = None, flow_preset: str = "medium",
                 progress: Progress | None = None) -> EditReport:
    """Measure ``edited`` against ``source`` (``[T,H,W,3]``, T >= 2) with an optional ``mask`` ``[T,H,W]``.

    ``image_embeds`` ``[T,D]`` (CLIP vision of the edited frames) gives CLIP-F, and with
    ``text_embed`` ``[D]`` also CLIP-T. ``progress(done, total)`` ticks per flow pair and SSIM
    chunk (in a node, each tick is also ComfyUI's cancel point).
    """
    metrics.check_pair(source, edited)
    check_finite(source, "the original (source) clip", IMAGE_HINT)
    check_finite(edited, "the edited clip", IMAGE_HINT)
    t = source.shape[0]
    if t < 2:
        raise ValueError("an edit report needs at least 2 frames (temporal metrics compare neighbours)")
    if mask is not None and tuple(mask.shape) != tuple(source.shape[:3]):
        raise ValueError(f"the mask has shape {tuple(mask.shape)} but the clip is {tuple(source.shape[:3])}; "
                         "give one mask frame per video frame at the video's size")
    total = t + 2 * (t - 1) + 1  # background SSIM frames, flow pairs, WarpSSIM pairs, the rest

    flows = metrics.source_flows(source, flow_preset, progress=stage(progress, 0, total))
    background = metrics.background_preservation(source, edited, mask, dilation_px, progress=stage(progress, t - 1, total))
    if mask is not None and torch.isnan(background.psnr).all():
        raise ValueError(f"the mask grown by {dilation_px} px covers every pixel of every frame (its values are "
                         f"{float(mask.min()):g}..{float(mask.max()):g}), so there is no background to measure; lower "
                         "dilation_px, or check that the mask is not inverted")
    report = EditReport(
        frames=t, has_mask=mask is not None, dilation_px=int(dilation_px), background=background,
        warp_error=metrics.warp_error(edited, flows), warp_error_source=metrics.warp_error(source, flows),
        warp_ssim=metrics.warp_ssim(edited, flows, progress=stage(progress, 2 * t - 1, total)),
        flicker=metrics.flicker(source, edited, mask, dilation_px))
    if image_embeds is not None:
        if image_embeds.shape[0] != t:
            raise ValueError(f"{image_embeds.shape[0]} CLIP image embeddings for {t} frames; embed every edited frame")
        report.clip_f = metrics.clip_frame_scores(image_embeds)
        if text_embed is not None:
            report.clip_t = metrics.clip_text_scores(image_embeds, text_embed)
    notify(progress, total, total)
    return report


def format_number(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals; "inf" for identical frames, "n/a" for undefined."""
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def summary_text(report: EditReport) -> str:
    """Plain-text table of the headline numbers, with how to read each; CLIP lines only when measured."""
    region = f"outside the mask grown by {report.dilation_px} px" if report.has_mask else "whole frame (no mask)"
    cov = _mean(report.background.coverage) * 100.0
    lines = [
        f"DRIVE edit report: {report.frames} frames",
        f"background PSNR  {format_number(report.bg_psnr)} dB   ({region}; {cov:.0f}% of pixels; higher = better kept)",
        f"background SSIM  {format_number(report.bg_ssim, 4)}   (1 = unchanged)",
        f"warp error       {format_number(report.mean_warp_error * 1e3, 3)} e-3   (MSE after warping with the source's DIS "
        f"flow, occlusions excluded; lower = steadier; the source itself scores "
        f"{format_number(report.mean_warp_error_source * 1e3, 3)} e-3)",
        f"WarpSSIM         {format_number(report.mean_warp_ssim)}   (RAVE's recipe x100 with DIS instead of RAFT; "
        "RAVE reports 80.51)",
        f"flicker ratio    {format_number(report.flicker_ratio, 3)}   (frame-to-frame change edited / source "
        f"{'inside the object' if report.object_seen and report.has_mask else 'over the frame'}; "
        "1 = as steady as the source)",
    ]
    if report.has_mask:
        lines.append(f"flicker outside  {format_number(report.flicker_ratio_outside, 3)}   (same, background)")
    if report.clip_t is not None:
        lines.append(f"CLIP-T           {format_number(report.clip_text)}   (100 x cos(frame, prompt); RAVE 29.76 with ViT-B/32)")
    if report.clip_f is not None:
        lines.append(f"CLIP-F           {format_number(report.clip_frame)}   (100 x mean cos over frame pairs; RAVE 95.99)")
    return "\n".join(lines)
