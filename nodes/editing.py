"""The DRIVE editing engine on ComfyUI's native MODEL: inversion, masked CFG, RAVE grid shuffle.

Every mechanic is a patch on a *clone* of the MODEL, so LoRA, ControlNet and IP-Adapter
applied elsewhere keep working:
- masked CFG: a post-CFG function (denoised space, ``disable_cfg1_optimization``);
- RAVE grid shuffle: a ``CALC_COND_BATCH`` wrapper that grids the latents, ControlNet
  hints and conditioning masks with one permutation per step, calls the UNet a chunk of
  grids at a time and hands frames back in frame order;
- DDIM / EasyInv inversion: a ``SAMPLER`` for increasing sigmas.
The one-box nodes compose these and call ``comfy.sample``; the patch nodes expose them
for core KSampler / SamplerCustomAdvanced. The maths lives in ``drive_ops``.
"""

from __future__ import annotations

import comfy.controlnet
import comfy.model_management
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch
from comfy_api.latest import io

from ..drive_ops.diffusion import inversion, masked_cfg, rave_grid, schedule
from ..drive_ops.core.mask_frames import match_mask_frames
from ..drive_ops.diffusion.pix2video import sample_pix2video
from .alt_methods import apply_stem_patch

GRID_WRAPPER_KEY = "drive_rave_grid"
MEMORY_SAFETY = 1.5


def _control_chain(conds: list) -> list:
    """Every ControlBase reachable from the cond entries (each once, previous_controlnet included)."""
    found: dict[int, object] = {}
    for cond in conds:
        for entry in cond or ():
            control = entry.get("control")
            while control is not None:
                found.setdefault(id(control), control)
                control = control.previous_controlnet
    return list(found.values())


def _frame_hint(control, frames: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """The control's hint in frame order at latent*8 resolution, as ComfyUI would prepare it per frame."""
    if not isinstance(control, comfy.controlnet.ControlNet) or control.vae is not None \
            or control.latent_format is not None or len(control.extra_concat_orig) > 0:
        raise ValueError(f"{type(control).__name__} hints cannot follow the DRIVE grid shuffle (only plain "
                         "pixel-hint ControlNets can); remove it or use grid_size 1 without shuffle")
    ratio = control.compression_ratio
    hint = comfy.utils.common_upscale(control.cond_hint_original, w * ratio, h * ratio,
                                      control.upscale_algorithm, "center")
    hint = control.preprocess_image(hint)
    if hint.shape[0] == 1:
        hint = hint.expand(frames, -1, -1, -1)
    elif hint.shape[0] != frames:
        raise ValueError(f"a ControlNet hint has {hint.shape[0]} frames but the video has {frames}; "
                         "apply the ControlNet with one hint image per frame (or a single image)")
    dtype = control.manual_cast_dtype if control.manual_cast_dtype is not None else control.control_model.dtype
    return hint.to(device=device, dtype=dtype)


def _gridded_cond_masks(conds: list, perm: torch.Tensor, grid_size: int, frames: int) -> list:
    """Per cond entry: its conditioning mask as grids [n, g*h, g*w] (None where it has none)."""
    out = []
    for cond in conds:
        masks = []
        for entry in cond or ():
            if "area" in entry:
                raise ValueError("area conditioning cannot follow the DRIVE grid shuffle; use masks "
                                 "(ConditioningSetMask) or grid_size 1 without shuffle")
            mask = entry.get("mask")
            if mask is None:
                masks.append(None)
                continue
            mask = match_mask_frames(mask, frames, what="conditioning mask")
            masks.append(rave_grid.compose_grids(mask.unsqueeze(1), perm, grid_size).squeeze(1))
        out.append(masks)
    return out


def _conds_for_chunk(conds: list, grid_masks: list, part: slice) -> list:
    """Copies of the cond entries whose masks are cut to the grids in ``part`` (inputs stay untouched)."""
    out = []
    for cond, masks in zip(conds, grid_masks):
        if cond is None:
            out.append(None)
            continue
        entries = []
        for entry, mask in zip(cond, masks):
            if mask is not None:
                entry = dict(entry)
                entry["mask"] = mask[part]
            entries.append(entry)
        out.append(entries)
    return out


def _grids_per_call(model, x_in: torch.Tensor, conds: list, n_grids: int, grid_size: int,
                    max_grids_per_call: int) -> int:
    """Grids per UNet call: the user's cap, or as many as ComfyUI's memory estimate says fit now."""
    if max_grids_per_call > 0:
        return min(max_grids_per_call, n_grids)
    entries = max(1, sum(len(c) for c in conds if c is not None))
    _, channels, h, w = x_in.shape
    free = comfy.model_management.get_free_memory(x_in.device)
    return rave_grid.largest_fitting(
        n_grids, lambda k: model.memory_required([k * entries, channels, h * grid_size, w * grid_size])
        * MEMORY_SAFETY, free)


def make_grid_wrapper(grid_size: int, shuffle: bool, seed: int, max_grids_per_call: int):
    """The CALC_COND_BATCH wrapper: frames in, grids through the UNet (chunked), frames out."""
    def grid_wrapper(executor, model, conds, x_in, timestep, model_options):
        if x_in.dim() != 4:
            raise ValueError(f"the DRIVE grid works on image-model latents [T,C,h,w], got {tuple(x_in.shape)}")
        sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
        if sigmas is None:
            raise ValueError("the DRIVE grid shuffle needs ComfyUI's sampling loop (sample_sigmas is missing)")
        frames, _, h, w = x_in.shape
        step = schedule.step_index(sigmas, timestep)
        perm = rave_grid.grid_permutation(frames, grid_size, seed, step, shuffle)
        n_grids = perm.numel() // (grid_size * grid_size)
        per_call = _grids_per_call(model, x_in, conds, n_grids, grid_size, max_grids_per_call)
        controls = _control_chain(conds)
        hint_grids = {id(c): rave_grid.compose_grids(_frame_hint(c, frames, h, w, x_in.device), perm, grid_size)
                      for c in controls}
        grid_masks = _gridded_cond_masks(conds, perm, grid_size, frames)
        saved = [(c, c.cond_hint) for c in controls]

        def run_chunk(grids: torch.Tensor, part: slice) -> list:
            for control in controls:
                control.cond_hint = hint_grids[id(control)][part]
            chunk_conds = _conds_for_chunk(conds, grid_masks, part)
            return executor(model, chunk_conds, grids, timestep[:1].expand(grids.shape[0]), model_options)

        try:
            return rave_grid.run_on_grids(run_chunk, x_in, perm, grid_size, per_call)
        finally:
            for control, hint in saved:
                control.cond_hint = hint

    return grid_wrapper


def apply_grid_patch(model, grid_size: int, shuffle: bool, seed: int, max_grids_per_call: int):
    """A clone of ``model`` with the RAVE grid wrapper (replacing any earlier one)."""
    patched = model.clone()
    wrapper_type = comfy.patcher_extension.WrappersMP.CALC_COND_BATCH
    patched.remove_wrappers_with_key(wrapper_type, GRID_WRAPPER_KEY)
    patched.add_wrapper_with_key(wrapper_type, GRID_WRAPPER_KEY,
                                 make_grid_wrapper(grid_size, shuffle, seed, max_grids_per_call))
    return patched


def make_masked_cfg(mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """The post-CFG function: DRIVE's guidance schedule, then ``M*cfg + (1-M)*uncond`` (a closure, so
    clones share the mask instead of deep-copying it)."""
    cache: dict[tuple, torch.Tensor] = {}

    def latent_mask(shape: torch.Size) -> torch.Tensor:
        key = (shape[0], shape[-2], shape[-1])
        if key not in cache:
            frames = match_mask_frames(mask, shape[0], what="mask")
            cache[key] = masked_cfg.mask_to_latent(frames, shape[-2], shape[-1], mode, threshold)
        return cache[key]

    def post_cfg(args: dict) -> torch.Tensor:
        denoised, uncond = args["denoised"], args["uncond_denoised"]
        if uncond is None:
            raise ValueError("masked CFG needs the uncond prediction; the patch disables ComfyUI's cfg=1 "
                             "shortcut, so another node must have removed that setting")
        sigmas = args["model_options"].get("transformer_options", {}).get("sample_sigmas")
        if sigmas is not None:
            step = schedule.step_index(sigmas, args["sigma"])
            if not masked_cfg.guidance_active(step, len(sigmas) - 1, cfg_start):
                return uncond
        if mask is None:
            return denoised
        return masked_cfg.masked_cfg_blend(denoised, uncond, latent_mask(denoised.shape))

    return post_cfg


def apply_masked_cfg_patch(model, mask: torch.Tensor | None, cfg_start: float, mode: str, threshold: float):
    """A clone of ``model`` with DRIVE's masked CFG as a post-CFG function."""
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(make_masked_cfg(mask, cfg_start, mode, threshold),
                                                disable_cfg1_optimization=True)
    return patched


def copy_conditioning(conditioning: list, memo: dict) -> list:
    """Conditioning with fresh dicts and ControlNet copies (chains kept, shared objects stay shared)."""
    def copy_control(control):
        if control is None:
            return None
        if id(control) not in memo:
            clone = control.copy()
            clone.set_previous_controlnet(copy_control(control.previous_controlnet))
            memo[id(control)] = clone
        return memo[id(control)]

    out = []
    for tensor, options in conditioning:
        options = dict(options)
        if options.get("control") is not None:
            options["control"] = copy_control(options["control"])
        out.append([tensor, options])
    return out


def _run(model, positive, negative, latent: dict, cfg: float, sampler, sigmas: torch.Tensor, seed: int) -> dict:
    """comfy.sample on zero noise (the latent is already at sigmas[0]) with a progress bar per step."""
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    memo: dict = {}
    positive, negative = copy_conditioning(positive, memo), copy_conditioning(negative, memo)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
    out = comfy.sample.sample_custom(model, torch.zeros_like(samples), cfg, sampler, sigmas, positive, negative,
                                     samples, noise_mask=latent.get("noise_mask"), callback=callback,
                                     disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = {k: v for k, v in latent.items() if k != "samples"}
    result["samples"] = out
    return result


def _sigma_table(model) -> torch.Tensor:
    return model.get_model_object("model_sampling").sigmas.float().cpu()


GRID_SIZE = dict(default=3, min=1, max=8)
GRID_SIZE_TIP = "g: each grid tiles g x g frames (RAVE default 3; 1 = per frame)."
MAX_GRIDS = dict(default=0, min=0, max=4096)
MAX_GRIDS_TIP = ("Grids per UNet call (cond and uncond together); 0 sizes it from free memory. Lower it if you "
                 "run out of VRAM: memory then stays flat in the frame count.")
MASK_MODE = dict(options=list(masked_cfg.MASK_MODES), default="nearest")
MASK_MODE_TIP = ("How the mask reaches latent size: nearest (DRIVE: one pixel per 8x8 block) or area (fraction "
                 "of the block above the threshold; 0 keeps thin parts).")
MASK_THRESHOLD = dict(default=0.5, min=0.0, max=1.0, step=0.01)
MASK_THRESHOLD_TIP = "Mask binarisation threshold (DRIVE 0.5)."
CFG_START = dict(default=0.0, min=-1.0, max=1.0, step=0.01)
CFG_START_TIP = ("DRIVE's cond_step_start: CFG applies only at steps with step/steps > cfg_start; the rest use the "
                 "negative prompt alone. 0 (DRIVE) leaves the first step unguided; -1 guides every step.")
INVERT_WINDOW = "EasyInv blends z <- eta*z + (1-eta)*z_prev inside start*steps < i < (start+length)*steps."


def easyinv_inputs() -> list:
    """EasyInv's settings, shared by DRIVE_InvertVideo and DRIVE_EasyInvSampler."""
    return [
        io.Float.Input("eta", default=0.5, min=0.0, max=1.0, step=0.01,
                       tooltip="EasyInv weight of the current latent (SD1.x 0.5, SDXL 0.8; 1 = plain DDIM)."),
        io.Float.Input("window_start", default=0.05, min=0.0, max=1.0, step=0.01,
                       tooltip="Start of the EasyInv window, as a fraction of the steps. " + INVERT_WINDOW),
        io.Float.Input("window_length", default=0.2, min=0.0, max=1.0, step=0.01,
                       tooltip="Length of the EasyInv window, as a fraction of the steps."),
        io.Combo.Input("blend", options=list(inversion.BLEND_MODES), default="after",
                       tooltip="after: blend each step's output (EasyInv README); before: blend the step's "
                               "input (the authors' SD-1.4 code)."),
    ]


def easyinv_sampler(eta: float, window_start: float, window_length: float, blend: str):
    """A KSAMPLER running drive_ops' EasyInv inversion with these settings."""
    return comfy.samplers.KSAMPLER(inversion.sample_easyinv, extra_options={
        "eta": eta, "window_start": window_start, "window_length": window_length, "blend": blend})


class InvertVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_InvertVideo",
            display_name="DRIVE Invert Video (DDIM / EasyInv / STEM)",
            category="DRIVE/invert",
            description="Inverts VAE-encoded frames to noise along the DDIM schedule (per frame as RAVE does, or "
                        "on grids), with EasyInv's latent blending. ControlNets applied to the conditioning "
                        "are honoured. The result feeds DRIVE Masked-CFG Sampler with the same steps.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (SD1.5-style eps model)."),
                io.Conditioning.Input("conditioning", tooltip="The inversion prompt; DRIVE uses empty text."),
                io.Latent.Input("latent", tooltip="The video's VAE-encoded frames [T,4,h,w]."),
                io.Int.Input("steps", default=50, min=1, max=1000, tooltip="Inversion steps; use the sampler's."),
                io.Combo.Input("method", options=["easyinv", "ddim", "stem"], default="easyinv",
                               tooltip="ddim: plain DDIM inversion; easyinv: DDIM with EasyInv's blending; stem: "
                                       "DDIM with STEM attention (256 EM bases over the clip's tokens; tune it "
                                       "with DRIVE STEM Attention + method ddim)."),
                *easyinv_inputs(),
                io.Float.Input("cfg", default=1.0, min=0.0, max=30.0, step=0.1,
                               tooltip="CFG during inversion; 1 uses the inversion prompt alone (DRIVE). "
                                       "Other values need `negative`."),
                io.Int.Input("grid_size", default=1, min=1, max=8,
                             tooltip="1 inverts each frame on its own (RAVE); g > 1 inverts fixed g x g grids."),
                io.Int.Input("max_grids_per_call", tooltip=MAX_GRIDS_TIP, **MAX_GRIDS),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Uncond prompt, only used when cfg is not 1."),
            ],
            outputs=[io.Latent.Output(display_name="inverted",
                                      tooltip="Latents at the top of the schedule: sample them with no added noise.")],
        )

    @classmethod
    def execute(cls, model, conditioning, latent, steps, method, eta, window_start, window_length, blend, cfg,
                grid_size, max_grids_per_call, negative=None) -> io.NodeOutput:
        if cfg != 1.0 and negative is None:
            raise ValueError("inversion with cfg other than 1 needs a `negative` conditioning; connect one or set cfg 1")
        patched = apply_grid_patch(model, grid_size, False, 0, max_grids_per_call)
        sigmas = schedule.ddim_inversion_sigmas(_sigma_table(model), steps)
        if method == "stem":
            patched = apply_stem_patch(patched)
        if method in ("ddim", "stem"):
            sampler = comfy.samplers.KSAMPLER(inversion.sample_ddim_inversion)
        else:
            sampler = easyinv_sampler(eta, window_start, window_length, blend)
        latent = {k: v for k, v in latent.items() if k != "noise_mask"}
        out = _run(patched, conditioning, conditioning if negative is None else negative, latent, cfg, sampler,
                   sigmas, 0)
        return io.NodeOutput(out)


class MaskedCFGSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_MaskedCFGSampler",
            display_name="DRIVE Masked-CFG Sampler (RAVE)",
            category="DRIVE/edit",
            description="DRIVE's editing sampler: DDIM from the inverted latents with the RAVE grid shuffle "
                        "and mask-guided CFG (the prompt acts inside the mask, the negative prompt outside). "
                        "Runs ComfyUI's own sampling on a patched clone, so LoRA/ControlNet/IP-Adapter work.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (SD1.5-style eps model)."),
                io.Conditioning.Input("positive", tooltip="The edit prompt (applied inside the mask)."),
                io.Conditioning.Input("negative", tooltip="The uncond prompt; DRIVE uses empty text. It also drives "
                                                          "the background, so a real negative prompt changes it."),
                io.Latent.Input("latent", tooltip="Inverted latents from DRIVE Invert Video (same steps)."),
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
        patched = apply_masked_cfg_patch(patched, mask, cfg_start, mask_mode, mask_threshold)
        sigmas = schedule.ddim_sampling_sigmas(_sigma_table(model), steps)
        if pix2video_weight > 0:
            sampler = comfy.samplers.KSAMPLER(sample_pix2video, extra_options={"weight": pix2video_weight})
        else:
            sampler = comfy.samplers.KSAMPLER(inversion.sample_ddim)
        return io.NodeOutput(_run(patched, positive, negative, latent, cfg, sampler, sigmas, seed))


class RAVEGridPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_RAVEGridPatch",
            display_name="DRIVE RAVE Grid Patch",
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
            display_name="DRIVE Masked CFG Patch",
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


class EasyInvSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_EasyInvSampler",
            display_name="DRIVE EasyInv Sampler",
            category="DRIVE/invert",
            description="A SAMPLER for inversion along flipped sigmas (FlipSigmas): DDIM inversion with "
                        "EasyInv's latent blending (eta 1 = plain DDIM inversion). Use it with "
                        "SamplerCustomAdvanced, DisableNoise and cfg 1.",
            inputs=easyinv_inputs(),
            outputs=[io.Sampler.Output(display_name="sampler", tooltip="The inversion sampler.")],
        )

    @classmethod
    def execute(cls, eta, window_start, window_length, blend) -> io.NodeOutput:
        return io.NodeOutput(easyinv_sampler(eta, window_start, window_length, blend))


NODES: list[type[io.ComfyNode]] = [InvertVideo, MaskedCFGSampler, RAVEGridPatch, MaskedCFGPatch, EasyInvSampler]
