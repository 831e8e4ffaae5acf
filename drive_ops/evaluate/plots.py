"""Per-frame metric curves of an EditReport drawn into an IMAGE tensor ``[1,H,W,3]``.

matplotlib is imported here, lazily, with its object-oriented API on the Agg canvas:
no pyplot global state, so it is safe inside ComfyUI's worker thread and needs no display.
"""

from __future__ import annotations

import numpy as np
import torch

from .edit_report import EditReport
from .edit_report import format_number as _num

PSNR_PLOT_CAP_DB = 60.0
"""Identical frames have infinite PSNR; they are drawn at this height (and labelled so)."""


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def plot_report(report: EditReport, width: int = 1200, height: int = 800, dpi: int = 100) -> torch.Tensor:
    """Render the report's curves as a float32 RGB image ``[1,height,width,3]`` in 0..1.

    Panels: background PSNR, background SSIM, warp error (edited vs source), WarpSSIM,
    flicker (edited vs source, inside / outside the mask) and, when measured, CLIP-T / CLIP-F.
    Frame-pair curves are drawn at the later frame of each pair.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    has_clip = report.clip_t is not None or report.clip_f is not None
    axes = fig.subplots(2, 3).ravel()
    frames = np.arange(report.frames)
    pairs = frames[1:]

    bg = report.background
    psnr = _np(bg.psnr)
    capped = np.isinf(psnr)
    ax = axes[0]
    ax.plot(frames, np.where(capped, PSNR_PLOT_CAP_DB, psnr), marker=".", color="tab:blue")
    if capped.any():
        ax.plot(frames[capped], np.full(capped.sum(), PSNR_PLOT_CAP_DB), "^", color="tab:green",
                label=f"identical (inf, drawn at {PSNR_PLOT_CAP_DB:.0f})")
        ax.legend(fontsize=8)
    region = f"outside mask +{report.dilation_px}px" if report.has_mask else "whole frame"
    ax.set_title(f"background PSNR dB ({region}): {_num(report.bg_psnr)}", fontsize=9)

    ax = axes[1]
    ax.plot(frames, _np(bg.ssim), marker=".", color="tab:blue")
    ax.set_title(f"background SSIM: {_num(report.bg_ssim, 4)}", fontsize=9)

    ax = axes[2]
    ax.plot(pairs, _np(report.warp_error) * 1e3, marker=".", label="edited", color="tab:red")
    ax.plot(pairs, _np(report.warp_error_source) * 1e3, "--", label="source (flow floor)", color="tab:gray")
    ax.set_title(f"warp error x1e-3: {_num(report.mean_warp_error * 1e3, 3)}", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[3]
    ax.plot(frames, _np(report.warp_ssim) * 100.0, marker=".", color="tab:purple")
    ax.set_title(f"WarpSSIM x100 (RAVE recipe, DIS flow): {_num(report.mean_warp_ssim)}", fontsize=9)

    ax = axes[4]
    fl = report.flicker
    ax.plot(pairs, _np(fl.edited_inside) * 255, marker=".", color="tab:orange",
            label="edited, object" if report.has_mask else "edited")
    ax.plot(pairs, _np(fl.source_inside) * 255, "--", color="tab:orange",
            label="source, object" if report.has_mask else "source")
    if report.has_mask:
        ax.plot(pairs, _np(fl.edited_outside) * 255, marker=".", color="tab:cyan", label="edited, background")
        ax.plot(pairs, _np(fl.source_outside) * 255, "--", color="tab:cyan", label="source, background")
    ax.set_title(f"frame-to-frame change (grey levels); ratio {_num(report.flicker_ratio, 3)}", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[5]
    if has_clip:
        if report.clip_t is not None:
            ax.plot(frames, _np(report.clip_t), marker=".", color="tab:green",
                    label=f"CLIP-T {_num(report.clip_text)}")
        if report.clip_f is not None:
            ax.plot(frames, _np(report.clip_f), marker=".", color="tab:brown",
                    label=f"CLIP-F {_num(report.clip_frame)}")
        ax.set_title("CLIP scores x100", fontsize=9)
        ax.legend(fontsize=8)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "CLIP-T / CLIP-F: connect a CLIP vision\nmodel (and a CLIP + prompt)",
                ha="center", va="center", fontsize=9, color="gray", transform=ax.transAxes)
    for ax in axes[:6 if has_clip else 5]:
        ax.set_xlabel("frame", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32)[..., :3] / 255.0
    return torch.from_numpy(rgba.copy()).unsqueeze(0)

