"""Evaluation nodes (DRIVE/evaluate): DRIVE_EditReport (metrics, plot, summary) and DRIVE_CompareStrip, over ``drive_ops.evaluate``."""

from __future__ import annotations

import math

import torch
from comfy_api.latest import io

import comfy.model_management as mm
from ..drive_ops.evaluate import compare_strip, edit_report, plots
from ..drive_ops.core.chunking import chunk_slices
from ..drive_ops.core.mask_frames import match_mask_frames
from ..drive_ops.evaluate.metrics import check_pair
from ..drive_ops.core.optical_flow import DIS_PRESETS
from ..drive_ops.core.validate import check_image, check_mask
from .checks import blend_mask, check_options, combo_answer
from .progress import progress_bar

CLIP_CHUNK = 16

CLIP_CAVEAT = (
    "CLIP-T compares the prompt's pooled text embedding with each frame's CLIP vision image "
    "embedding, so both must live in the same projected CLIP space. That holds for an SDXL CLIP "
    "(its CLIP-G pooled output is projected) with clip_vision_g. An SD1.5 checkpoint's CLIP "
    "returns CLIP-L's unprojected pooled output (ComfyUI drops its text projection), so CLIP-T "
    "with it is indicative at best and not comparable with published numbers (RAVE: ViT-B/32). "
    "CLIP-F only needs the CLIP vision model.")


def _image_embeds(clip_vision, frames: torch.Tensor) -> torch.Tensor:
    """CLIP vision ``image_embeds`` ``[T,D]`` of ``frames``, in chunks with a progress bar."""
    total = frames.shape[0]
    progress = progress_bar(total)
    out = []
    for part in chunk_slices(total, CLIP_CHUNK):
        out.append(clip_vision.encode_image(frames[part])["image_embeds"].float().cpu())
        progress(part.stop, total)
    return torch.cat(out)


def _text_embed(clip, prompt: str) -> torch.Tensor:
    """The prompt's pooled text embedding ``[D]`` through ComfyUI's CLIP (``return_pooled``)."""
    _, pooled = clip.encode_from_tokens(clip.tokenize(prompt), return_pooled=True)
    if pooled is None:
        raise ValueError("this CLIP gives no pooled text output, so CLIP-T cannot be measured; "
                         "disconnect it (CLIP-F still works) or use an SD1.5/SDXL CLIP")
    return pooled.float().cpu().reshape(-1)


# The headless runner reads the report from this ui key (scripts/run_outputs.py), in the outputs' order.
REPORT_UI_KEY = "drive_report"
REPORT_NUMBERS = ("background_psnr", "background_ssim", "warp_error", "flicker_ratio", "clip_t", "clip_f")


def _json_number(value: float) -> float | str:
    """The ui message is JSON for the browser, which has no inf/nan: those go as text."""
    return float(value) if math.isfinite(value) else str(float(value))


class EditReport(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_EditReport",
            display_name="Edit Report (DRIVE)",
            category="DRIVE/evaluate",
            description=(
                "Measures an edit against its source clip: background PSNR/SSIM outside the dilated mask, "
                "warp error (DIS flow of the source, occlusions excluded), RAVE's WarpSSIM, flicker "
                "(frame-to-frame change, edited vs source) and, with CLIP models, CLIP-T / CLIP-F (x100). "
                "Returns a plot of the per-frame curves, a text summary (show it with Preview Any) and the "
                "headline numbers. CLIP outputs are -1.0 when no CLIP vision model is connected. " + CLIP_CAVEAT),
            inputs=[
                io.Image.Input("original", tooltip="The source clip, frames as IMAGE [T,H,W,3]."),
                io.Image.Input("edited", tooltip="The edited clip: same frame count and size as the original."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The edited object's mask (one per frame, or one for all). Without it the "
                                      "background metrics cover the whole frame."),
                io.Int.Input("dilation_px", default=7, min=0, max=128,
                             tooltip="Grow the mask by this many pixels before measuring the background, so the "
                                     "seam band counts as neither object nor background (the field uses 5-9)."),
                io.Combo.Input("flow_preset", options=list(DIS_PRESETS), default="medium",
                               tooltip="OpenCV DIS optical-flow preset for the temporal metrics: faster presets "
                                       "give coarser flow and a higher warp-error floor."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="Optional CLIP vision model (core Load CLIP Vision): enables CLIP-F, "
                                            "and CLIP-T with a CLIP text model and a prompt."),
                io.Clip.Input("clip", optional=True,
                              tooltip="Optional CLIP text model for CLIP-T; its pooled output must share the CLIP "
                                      "vision model's projected space (see the node description)."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="The edit prompt CLIP-T scores the frames against (used with clip)."),
            ],
            outputs=[
                io.Image.Output(display_name="plot", tooltip="Per-frame curves of every metric."),
                io.String.Output(display_name="summary", tooltip="The headline numbers with how to read them."),
                io.Float.Output(display_name="background_psnr",
                                tooltip="Mean per-frame PSNR (dB) outside the dilated mask; inf if unchanged."),
                io.Float.Output(display_name="background_ssim", tooltip="Mean SSIM outside the dilated mask."),
                io.Float.Output(display_name="warp_error", tooltip="Mean warp MSE of the edited clip (0..1 RGB)."),
                io.Float.Output(display_name="flicker_ratio",
                                tooltip="Frame-to-frame change inside the object, edited / source (1 = as steady)."),
                io.Float.Output(display_name="clip_t", tooltip="CLIP text score x100, or -1.0 if not measured."),
                io.Float.Output(display_name="clip_f", tooltip="CLIP frame consistency x100, or -1.0 if not measured."),
            ],
        )

    @classmethod
    def validate_inputs(cls, flow_preset) -> bool | str:
        return combo_answer(cls, flow_preset=flow_preset)

    @classmethod
    def execute(cls, original: torch.Tensor, edited: torch.Tensor, dilation_px: int, flow_preset: str,
                prompt: str, mask: torch.Tensor | None = None, clip_vision=None, clip=None) -> io.NodeOutput:
        check_options(cls, flow_preset=flow_preset)
        t, h, w = original.shape[:3]  # build_report checks both clips' shapes and values
        device = mm.get_torch_device()  # the SSIM and warps are per-pixel work: run them where the GPU is
        if mask is not None:
            check_mask(mask, "the mask input")
            mask = match_mask_frames(mask, t, h, w).to(device)
        if clip is not None and clip_vision is None:
            raise ValueError("CLIP-T needs a CLIP vision model as well as the CLIP text model: connect "
                             "clip_vision (core Load CLIP Vision), or disconnect clip")
        if clip is not None and not prompt.strip():
            raise ValueError("CLIP-T needs the edit prompt: write it in 'prompt', or disconnect clip")
        image_embeds = None if clip_vision is None else _image_embeds(clip_vision, edited[..., :3])
        text_embed = None if clip is None else _text_embed(clip, prompt)
        report = edit_report.build_report(original.to(device), edited.to(device), mask, dilation_px, image_embeds,
                                          text_embed, flow_preset, progress=progress_bar(1))
        summary = edit_report.summary_text(report)
        if report.clip_t is not None:
            summary += ("\nnote: CLIP-T is valid only if the CLIP's pooled text output and the CLIP vision image "
                        "embeddings share CLIP's projected space (not so for an SD1.5 checkpoint's CLIP)")
        plot = plots.plot_report(report).to(mm.intermediate_device())
        numbers = (report.bg_psnr, report.bg_ssim, report.mean_warp_error, report.flicker_ratio, report.clip_text,
                   report.clip_frame)
        shown = {"summary": summary, **{name: _json_number(v) for name, v in zip(REPORT_NUMBERS, numbers)}}
        return io.NodeOutput(plot, summary, *numbers, ui={REPORT_UI_KEY: [shown]})


class CompareStrip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_CompareStrip",
            display_name="Compare Strip (DRIVE)",
            category="DRIVE/evaluate",
            description=("Lays source, edited and the mask (tinted red over the source) side by side, one row per "
                         "chosen frame, as one image for READMEs and bug reports."),
            inputs=[
                io.Image.Input("source", tooltip="The source clip."),
                io.Image.Input("edited", tooltip="The edited clip: same frame count and size as the source."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional object mask (one per frame, or one for all): adds a third column."),
                io.String.Input("frames", default="",
                                tooltip="Frame numbers, comma-separated (\"0, 8, -1\"; negatives count from the end). "
                                        "Empty picks 4 frames spread over the clip."),
            ],
            outputs=[io.Image.Output(display_name="strip", tooltip="One image: a row per frame.")],
        )

    @classmethod
    def execute(cls, source: torch.Tensor, edited: torch.Tensor, frames: str,
                mask: torch.Tensor | None = None) -> io.NodeOutput:
        check_image(source, "the source input")
        check_image(edited, "the edited input")
        check_pair(source, edited)
        t, h, w = source.shape[:3]
        if mask is not None:
            mask = match_mask_frames(blend_mask(mask, "DRIVE_CompareStrip"), t, h, w)
        indices = compare_strip.parse_frame_indices(frames, t)
        strip = compare_strip.compare_strip(source, edited, mask, indices)
        return io.NodeOutput(strip.to(mm.intermediate_device()))


NODES: list[type[io.ComfyNode]] = [EditReport, CompareStrip]
