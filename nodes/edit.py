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

from comfy_api.latest import io

from ..drive_ops.diffusion import masked_cfg, schedule
from .patches.grid_wrapper import MAX_GRIDS, MAX_GRIDS_TIP, apply_grid_patch
from .patches.masked_cfg_hook import apply_masked_cfg_patch
from .patches.samplers import ddim_sampler, pix2video_sampler, run_sampler, sigma_table

GRID_SIZE = dict(default=3, min=1, max=8)
GRID_SIZE_TIP = "g: each grid tiles g x g frames (RAVE default 3; 1 = per frame)."
MASK_MODE = dict(options=list(masked_cfg.MASK_MODES), default="nearest")
MASK_MODE_TIP = ("How the mask reaches latent size: nearest (DRIVE: one pixel per 8x8 block) or area (fraction "
                 "of the block above the threshold; 0 keeps thin parts).")
MASK_THRESHOLD = dict(default=0.5, min=0.0, max=1.0, step=0.01)
MASK_THRESHOLD_TIP = "Mask binarisation threshold (DRIVE 0.5)."
CFG_START = dict(default=0.0, min=-1.0, max=1.0, step=0.01)
CFG_START_TIP = ("DRIVE's cond_step_start: CFG applies only at steps with step/steps > cfg_start; the rest use the "
                 "negative prompt alone. 0 (DRIVE) leaves the first step unguided; -1 guides every step.")


class MaskedCFGSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskedCFGSampler",
            display_name="Masked-CFG Sampler (DRIVE)",
            category="DRIVE/edit",
            description="DRIVE's editing sampler: DDIM from the inverted latents with the RAVE grid shuffle "
                        "and mask-guided CFG (the prompt acts inside the mask, the negative prompt outside). "
                        "Runs ComfyUI's own sampling on a patched clone, so LoRA/ControlNet/IP-Adapter work.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (SD1.5-style eps model)."),
                io.Conditioning.Input("positive", tooltip="The edit prompt (applied inside the mask)."),
                io.Conditioning.Input("negative", tooltip="The uncond prompt; DRIVE uses empty text. It also drives "
                                                          "the background, so a real negative prompt changes it."),
                io.Latent.Input("latent", tooltip="Inverted latents from Invert Video (DRIVE) (same steps)."),
                io.Int.Input("steps", default=50, min=1, max=1000, tooltip="DDIM steps (RAVE/DRIVE: 50)."),
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
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="Edited latents in frame order.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, steps, cfg, cfg_start, grid_size, shuffle, seed,
                max_grids_per_call, mask_mode, mask_threshold, mask=None, pix2video_weight=0.0) -> io.NodeOutput:
        patched = apply_grid_patch(model, grid_size, shuffle, seed, max_grids_per_call)
        if positive is negative:
            # One prompt wired to both: uncond == cond, so every step's result is the cond prediction
            # (CFG, the mask blend and unguided steps alike); cfg 1 lets ComfyUI skip the second pass.
            cfg = 1.0
        else:
            patched = apply_masked_cfg_patch(patched, mask, cfg_start, mask_mode, mask_threshold)
        sigmas = schedule.ddim_sampling_sigmas(sigma_table(model), steps)
        sampler = pix2video_sampler(pix2video_weight) if pix2video_weight > 0 else ddim_sampler()
        return io.NodeOutput(run_sampler(patched, positive, negative, latent, cfg, sampler, sigmas, seed))


class RAVEGridPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_RAVEGridPatch",
            display_name="RAVE Grid Patch (DRIVE)",
            category="DRIVE/edit",
            description="Patches a MODEL so every UNet call sees the frames tiled into g x g grids, reshuffled "
                        "each step (ControlNet hints follow). For core KSampler / SamplerCustomAdvanced with "
                        "samplers that call the model once per step (ddim, euler, euler_ancestral, dpmpp_2m).",
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
            description="Patches a MODEL with DRIVE's mask-guided CFG: the CFG result inside the mask, the "
                        "negative-prompt prediction outside. Stacks with other post-CFG patches.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Mask.Input("mask", tooltip="Object mask [T,H,W] at the video's size (one frame broadcasts)."),
                io.Float.Input("cfg_start", tooltip=CFG_START_TIP, **CFG_START),
                io.Combo.Input("mask_mode", tooltip=MASK_MODE_TIP, **MASK_MODE),
                io.Float.Input("mask_threshold", tooltip=MASK_THRESHOLD_TIP, **MASK_THRESHOLD),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The patched clone.")],
        )

    @classmethod
    def execute(cls, model, mask, cfg_start, mask_mode, mask_threshold) -> io.NodeOutput:
        return io.NodeOutput(apply_masked_cfg_patch(model, mask, cfg_start, mask_mode, mask_threshold))


NODES: list[type[io.ComfyNode]] = [MaskedCFGSampler, RAVEGridPatch, MaskedCFGPatch]
