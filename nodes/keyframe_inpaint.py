"""Fill Background's diffusion keyframe fill: the user's MODEL inpaints the area no frame shows.

The keyframe (already filled by propagation wherever some frame shows the background,
and by OpenCV inside the rest as a starting point) is VAE-encoded, noised to ``denoise``
and sampled with the pack's DDIM sampler (Euler on flow models) under a latent noise mask over the unseen area,
so only that area is re-generated and the model sees the real background around it.
It goes through ``comfy.sample`` on the user's MODEL and CONDITIONING, so LoRA and
ControlNet apply (a ControlNet with one hint per frame gets the keyframe's hint). For
inpainting checkpoints (a ``masked_image`` input channel), the conditioning also gets
the masked keyframe's latent and the mask, as ComfyUI's InpaintModelConditioning does.
The result replaces the keyframe inside the unseen area only, faded in over a few pixels
from its edge.
"""

from __future__ import annotations

import comfy.sample
import node_helpers
import torch

from ..drive_ops.composite.fill_background import KeyframeFill, inpaint_opencv
from ..drive_ops.core.frame_plan import apply_frame_plan, plan_frame_size
from ..drive_ops.core.frame_plan_inverse import fit_to_canvas
from ..drive_ops.core.mask_morphology import feather_mask, grow_mask
from ..drive_ops.diffusion.cond_grid import control_chain, copy_conditioning
from .patches.model_family import family_of
from .patches.samplers import ddim_sampler, run_sampler

LATENT_PX = 8
EDGE_FADE_PX = 3.0


def is_inpainting_model(model) -> bool:
    """True for checkpoints whose UNet takes the masked image and the mask as extra channels."""
    return "masked_image" in getattr(model.model, "concat_keys", ())


def conditioning_for_frame(conditioning: list, index: int, frames: int, memo: dict) -> list:
    """A copy of ``conditioning`` for frame ``index`` alone: per-frame ControlNet hints and masks cut to it."""
    out = copy_conditioning(conditioning, memo)
    for control in control_chain([[options for _, options in out]]):
        hint = control.cond_hint_original
        if hint is not None and hint.shape[0] == frames and frames > 1:
            control.cond_hint_original = hint[index:index + 1]
    for entry in out:
        mask = entry[1].get("mask")
        if mask is not None and mask.dim() == 3 and mask.shape[0] == frames and frames > 1:
            entry[1]["mask"] = mask[index:index + 1]
    return out


def diffusion_keyframe_fill(model, positive: list, negative: list, vae, steps: int, cfg: float, denoise: float,
                            seed: int, frames: int, inpaint_method: str) -> KeyframeFill:
    """The ``KeyframeFill`` that inpaints a keyframe's unseen area with ``model`` (see the module docstring)."""
    inpainting = is_inpainting_model(model)

    def fill(frame: torch.Tensor, hole: torch.Tensor, index: int) -> torch.Tensor:
        height, width = hole.shape
        start = inpaint_opencv(frame, hole, inpaint_method)
        plan = plan_frame_size(height, width, "crop_to_multiple_of_8")
        pixels = start[None].float().cpu()
        noise_region = grow_mask(hole[None].float().cpu(), LATENT_PX)
        latent = {"samples": vae.encode(pixels[..., :3]),
                  "noise_mask": apply_frame_plan(noise_region, plan).unsqueeze(1)}
        memo: dict = {}
        pos = conditioning_for_frame(positive, index, frames, memo)
        neg = conditioning_for_frame(negative, index, frames, memo)
        if inpainting:
            masked = torch.where(hole[None, ..., None].cpu(), torch.full_like(pixels, 0.5), pixels)
            values = {"concat_latent_image": vae.encode(masked[..., :3]),
                      "concat_mask": apply_frame_plan(hole[None].float().cpu(), plan).unsqueeze(1)}
            pos = node_helpers.conditioning_set_values(pos, values)
            neg = node_helpers.conditioning_set_values(neg, values)
        sigmas = family_of(model).sampling_sigmas(steps)
        sigmas = sigmas[steps - max(1, round(steps * denoise)):]
        noise = comfy.sample.prepare_noise(latent["samples"], seed + index)
        sampled = run_sampler(model, pos, neg, latent, cfg, ddim_sampler(), sigmas, seed, noise=noise)
        decoded, covered = fit_to_canvas(vae.decode(sampled["samples"])[..., :3].float(), height, width)
        invented = torch.where(covered[..., None], decoded[0].clamp(0, 1), start.float().cpu())
        fade = feather_mask(grow_mask(hole[None].float().cpu(), -int(EDGE_FADE_PX)), EDGE_FADE_PX)[0] \
            * hole.float().cpu()
        mixed = start.float().cpu() + (invented - start.float().cpu()) * fade[..., None]
        return mixed.to(device=frame.device, dtype=frame.dtype)

    return fill
