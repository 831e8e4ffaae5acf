"""The DRIVE editing nodes (DRIVE/edit) on ComfyUI's native MODEL: masked CFG and the RAVE grid shuffle.

Every mechanic is a patch on a *clone* of the MODEL (``nodes/patches``), so LoRA,
ControlNet and IP-Adapter applied elsewhere keep working:
- masked CFG: a post-CFG function (denoised space) and a gate that keeps ComfyUI's cfg-1
  shortcut (no uncond UNet pass) at every step whose result cannot read uncond;
- RAVE grid shuffle: a ``CALC_COND_BATCH`` wrapper that grids the latents, ControlNet
  hints and conditioning masks with one permutation per step, calls the UNet a chunk of
  grids at a time and hands frames back in frame order.
The one-box Masked-CFG Sampler composes them and calls ``comfy.sample``; the patch nodes
expose them for core KSampler / SamplerCustomAdvanced. The inversion it starts from is
DRIVE/invert's. The maths lives in ``drive_ops.diffusion``.
"""

from __future__ import annotations

import comfy.sampler_helpers
import torch
from comfy_api.latest import io

from ..drive_ops.core.validate import check_latent, check_numbers
from ..drive_ops.diffusion import masked_cfg, schedule
from ..drive_ops.diffusion.cond_equal import conditioning_equal
from ..drive_ops.diffusion.cond_grid import copy_conditioning
from ..drive_ops.diffusion.latent_mask import broadcast_latent_mask
from .checks import check_options, combo_answer
from .patches.grid_wrapper import MAX_GRIDS, MAX_GRIDS_TIP, apply_grid_patch
from .patches.masked_cfg_hook import apply_masked_cfg_patch, latent_mask_for
from .patches.model_family import family_of
from .patches.samplers import edit_sampler, run_sampler
from .patches.video_latent import check_conditioning_frames, grid_patch_for

GRID_SIZE = dict(default=3, min=1, max=8)
GRID_SIZE_TIP = "g: each grid tiles g x g frames (RAVE default 3; 1 = per frame)."
MASK_MODE = dict(options=list(masked_cfg.MASK_MODES), default="nearest")
MASK_MODE_TIP = ("How the mask reaches latent size: nearest (DRIVE: one pixel per 8x8 block) or area (fraction "
                 "of the block above the threshold; 0 keeps thin parts).")
MASK_THRESHOLD = dict(default=0.5, min=0.0, max=1.0, step=0.01)
MASK_THRESHOLD_TIP = "Mask binarisation threshold (DRIVE 0.5)."
CFG_START = dict(default=0.0, min=-1.0, max=1.0, step=0.01)
CFG_START_TIP = ("DRIVE's cond_step_start: CFG applies only at steps with step/steps > cfg_start; the rest use the "
                 "negative prompt alone. 0 (DRIVE) leaves the first step unguided; -1 guides every step. With "
                 "0 or more the sampler must call the model once per step (ddim, euler, dpmpp_2m, ...). If the "
                 "object drifts from where it was without structure guidance (no ControlNet), try 0.2-0.3: the "
                 "first steps then keep the source layout (test bed, 24 clips: the object redrawn elsewhere in 30 % "
                 "of frames at 0, 10 % at 0.3; bench.quality).")
BACKGROUND_TIP = ("What drives the area outside the mask (no CFG there). Not connected: the negative prompt, as in "
                  "DRIVE. Connect the inversion prompt (or a prompt for the background) to use a real negative "
                  "prompt inside the mask without changing the background. Costs one more model evaluation per "
                  "step, except in the Masked-CFG Sampler when it equals the negative (same text tensors, same "
                  "ControlNet chain, e.g. both empty text through the same ControlNet): that pass is skipped.")
NOISE_MASK_REFUSAL = (
    "this latent has a noise_mask (Set Latent Noise Mask) but no record of its source: with the zero noise an "
    "inverted latent is sampled with, ComfyUI would pin the area outside the mask to the inverted noise, which "
    "decodes as noise. Set the noise mask on the latent before or after Invert Video (DRIVE) (which records the "
    "source), or drop it and use this node's `mask` input; Composite Background keeps the original outside the "
    "mask bit for bit.")
NO_SOURCE_AT_CFG1 = (
    "at cfg 1 on a flow-matching model the mask gates the edit by keeping the source's trajectory outside it, which "
    "needs the source latent Invert Video (DRIVE) records on its output; connect that output directly (or set cfg "
    "above 1 for masked guidance, which needs a negative prompt pass)")


def keep_source_outside(out: dict, noise_mask: torch.Tensor, record: dict | None) -> dict:
    """Honour a noise mask on an inverted latent: outside it, the recorded source latent, exactly."""
    source = None if record is None else record.get("source")
    if source is None:
        raise ValueError(NOISE_MASK_REFUSAL)
    samples = out["samples"]
    if tuple(source.shape) != tuple(samples.shape):
        raise ValueError(f"the latent's noise_mask needs its source latent, but the recorded source is "
                         f"{tuple(source.shape)} and the latent is {tuple(samples.shape)} (resized or batched after "
                         "inversion); invert the latent you edit")
    keep = comfy.sampler_helpers.prepare_mask(noise_mask, samples.shape, samples.device).to(samples.dtype)
    return dict(out, samples=samples * keep + source.to(samples) * (1 - keep))


class MaskedCFGSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskedCFGSampler",
            display_name="Masked-CFG Sampler (DRIVE)",
            category="DRIVE/edit",
            description="DRIVE's editing sampler: DDIM from the inverted latents with the RAVE grid shuffle "
                        "and mask-guided CFG: inside the mask CFG of positive against negative, outside the "
                        "background prompt alone (the negative prompt when `background` is not connected, as in "
                        "DRIVE). On flow-matching models at cfg 1 (guidance-distilled models, no negative pass) the "
                        "mask gates the edit instead: outside it the latent follows the source's trajectory at every "
                        "step and ends on the source exactly. Runs ComfyUI's own sampling on a patched clone, so "
                        "LoRA/ControlNet/IP-Adapter work.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model: a discrete-schedule eps or v-prediction "
                                                "model (SD1.x, SD2.x, SDXL) or a flow-matching model (CONST "
                                                "sampling at any shift); the one the latent was inverted with."),
                io.Conditioning.Input("positive", tooltip="The edit prompt (CFG inside the mask)."),
                io.Conditioning.Input("negative", tooltip="The uncond prompt of CFG inside the mask; DRIVE uses empty "
                                                          "text. Without `background` it also drives the area "
                                                          "outside the mask, so a real negative prompt changes it."),
                io.Latent.Input("latent", tooltip="Inverted latents from Invert Video (DRIVE) (same steps and denoise: "
                                                  "they record them, and a mismatch is an error). A noise_mask on "
                                                  "them keeps the source latent outside it."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="DDIM steps (RAVE/DRIVE: 50); the inversion's. On flow models Euler on the "
                                     "velocity, or FireFlow when the latent was inverted with it (recorded)."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=30.0, step=0.1, tooltip="CFG scale (DRIVE 7.5)."),
                io.Float.Input("cfg_start", tooltip=CFG_START_TIP, **CFG_START),
                io.Int.Input("grid_size", tooltip=GRID_SIZE_TIP, **GRID_SIZE),
                io.Boolean.Input("shuffle", default=True,
                                 tooltip="Reshuffle frames across grids every step (RAVE); off keeps fixed grids."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the per-step shuffles (a private generator)."),
                io.Int.Input("max_grids_per_call", tooltip=MAX_GRIDS_TIP, **MAX_GRIDS),
                io.Combo.Input("mask_mode", tooltip=MASK_MODE_TIP, **MASK_MODE),
                io.Float.Input("mask_threshold", tooltip=MASK_THRESHOLD_TIP, **MASK_THRESHOLD),
                io.Mask.Input("mask", optional=True,
                              tooltip="Object mask [T,H,W] at the video's size (one frame broadcasts). "
                                      "Without it this is a global RAVE edit."),
                io.Float.Input("pix2video_weight", default=0.0, min=0.0, max=10000.0, step=1.0, optional=True,
                               tooltip="Pix2Video latent guidance (0 = off, Pix2Video: 100): for the first 52% "
                                       "of the steps each frame is nudged toward the previous frame's x0."),
                io.Conditioning.Input("background", optional=True, tooltip=BACKGROUND_TIP),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01, optional=True,
                               tooltip="Partial edit (strength): run the last floor(steps*denoise) steps; the "
                                       "inversion's denoise. cfg_start and Pix2Video's 52% count steps of the full "
                                       "schedule."),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="Edited latents in frame order.")],
        )

    @classmethod
    def validate_inputs(cls, mask_mode) -> bool | str:
        return combo_answer(cls, mask_mode=mask_mode)

    @classmethod
    def execute(cls, model, positive, negative, latent, steps, cfg, cfg_start, grid_size, shuffle, seed,
                max_grids_per_call, mask_mode, mask_threshold, mask=None, pix2video_weight=0.0, background=None,
                denoise=1.0) -> io.NodeOutput:
        check_options(cls, mask_mode=mask_mode)
        samples = check_latent(latent, "the latent input")
        check_numbers(cfg=cfg, cfg_start=cfg_start, mask_threshold=mask_threshold, pix2video_weight=pix2video_weight,
                      denoise=denoise)
        family = family_of(model)
        check_conditioning_frames(samples, positive=positive, negative=negative, background=background)
        record = latent.get(schedule.INVERSION_RECORD_KEY)
        family.check_record(record)
        method = "ddim" if record is None else record.get("method", "ddim")
        sigmas = family.sampling_sigmas(steps, denoise, method)
        schedule.check_inversion_record(record, steps, denoise, float(sigmas[0]))
        schedule_steps = family.schedule_steps(steps, method)
        family.sampling_function(method, pix2video_weight, schedule_steps)  # refuses Pix2Video on flow models now
        gated = family.flow and cfg == 1.0 and mask is not None
        noise_mask = latent.get("noise_mask")
        if noise_mask is not None and (record is None or record.get("source") is None):
            raise ValueError(NOISE_MASK_REFUSAL)
        if background is not None and not conditioning_equal(background, negative):
            background = copy_conditioning(background, {})
        else:
            background = None
        patched = grid_patch_for(model, samples, grid_size, shuffle, seed, max_grids_per_call, "Masked-CFG Sampler")
        keep_source = None
        if gated:
            if record is None or record.get("source") is None:
                raise ValueError(NO_SOURCE_AT_CFG1)
            if tuple(record["source"].shape) != tuple(samples.shape):
                raise ValueError(f"the recorded source latent is {tuple(record['source'].shape)} but the latent is "
                                 f"{tuple(samples.shape)} (resized or batched after inversion); invert the latent "
                                 "you edit")
            keep_source = (record["source"], latent_mask_for(mask, samples.shape, mask_mode, mask_threshold,
                                                           family.latent_factor, family.temporal_stride))
        elif positive is negative and background is None:
            # One prompt wired to both: uncond == cond, so every step's result is the cond prediction
            # (CFG, the mask blend and unguided steps alike); cfg 1 lets ComfyUI skip the second pass.
            cfg = 1.0
        else:
            patched = apply_masked_cfg_patch(patched, mask, cfg_start, mask_mode, mask_threshold, background,
                                             schedule_steps, tuple(samples.shape))
        sampler = edit_sampler(method, pix2video_weight, schedule_steps, keep_source)
        out = run_sampler(patched, positive, negative, latent, cfg, sampler, sigmas, seed)
        out.pop(schedule.INVERSION_RECORD_KEY, None)
        if keep_source is not None:  # the sampler ends on the source there; this drops the latent format's rounding
            source, latent_mask = keep_source
            inside = broadcast_latent_mask(latent_mask, out["samples"])
            out = dict(out, samples=out["samples"] * inside + source.to(out["samples"]) * (1 - inside))
        if noise_mask is not None:
            out = keep_source_outside(out, noise_mask, record)
        return io.NodeOutput(out)


class RAVEGridPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_RAVEGridPatch",
            display_name="RAVE Grid Patch (DRIVE)",
            category="DRIVE/edit",
            description="Patches a MODEL so every UNet call sees the frames tiled into g x g grids, reshuffled "
                        "each step (ControlNet hints follow). For core KSampler / SamplerCustomAdvanced; with "
                        "shuffle on the sampler must call the model once per step (ddim, euler, euler_ancestral, "
                        "dpmpp_2m, ...): heun, dpm_2 and other two-call samplers get an error.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Int.Input("grid_size", tooltip=GRID_SIZE_TIP, **GRID_SIZE),
                io.Boolean.Input("shuffle", default=True, tooltip="Reshuffle frames across grids every step."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Seed of the per-step shuffles (a private generator)."),
                io.Int.Input("max_grids_per_call", tooltip=MAX_GRIDS_TIP, **MAX_GRIDS),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The patched clone.")],
        )

    @classmethod
    def execute(cls, model, grid_size, shuffle, seed, max_grids_per_call) -> io.NodeOutput:
        return io.NodeOutput(apply_grid_patch(model, grid_size, shuffle, seed, max_grids_per_call))


class MaskedCFGPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskedCFGPatch",
            display_name="Masked-CFG Patch (DRIVE)",
            category="DRIVE/edit",
            description="Patches a MODEL with DRIVE's mask-guided CFG: the CFG result inside the mask; outside, "
                        "the `background` prompt's prediction, or the negative prompt's when it is not connected "
                        "(DRIVE). Stacks with other post-CFG patches; works with core KSampler / "
                        "SamplerCustomAdvanced.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Mask.Input("mask", tooltip="Object mask [T,H,W] at the video's size (one frame broadcasts)."),
                io.Float.Input("cfg_start", tooltip=CFG_START_TIP, **CFG_START),
                io.Combo.Input("mask_mode", tooltip=MASK_MODE_TIP, **MASK_MODE),
                io.Float.Input("mask_threshold", tooltip=MASK_THRESHOLD_TIP, **MASK_THRESHOLD),
                io.Conditioning.Input("background", optional=True, tooltip=BACKGROUND_TIP),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The patched clone.")],
        )

    @classmethod
    def validate_inputs(cls, mask_mode) -> bool | str:
        return combo_answer(cls, mask_mode=mask_mode)

    @classmethod
    def execute(cls, model, mask, cfg_start, mask_mode, mask_threshold, background=None) -> io.NodeOutput:
        check_options(cls, mask_mode=mask_mode)
        check_numbers(cfg_start=cfg_start, mask_threshold=mask_threshold)
        return io.NodeOutput(apply_masked_cfg_patch(model, mask, cfg_start, mask_mode, mask_threshold, background))


NODES: list[type[io.ComfyNode]] = [MaskedCFGSampler, RAVEGridPatch, MaskedCFGPatch]
