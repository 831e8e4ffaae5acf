"""The pack's samplers as ComfyUI SAMPLER objects, and the one-box nodes' run through comfy.sample.

Each factory wraps a k-diffusion-style function of ``drive_ops.diffusion`` in a
``comfy.samplers.KSAMPLER``; :func:`run_sampler` is the sampling call Invert Video and
Masked-CFG Sampler share (zero noise, copied conditioning, a progress bar per step), and
Fill Background's keyframe inpainting (with noise).
"""

from __future__ import annotations

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from ...drive_ops.diffusion import inversion
from ...drive_ops.diffusion.cond_grid import copy_conditioning
from ...drive_ops.diffusion.pix2video import GUIDED_FRACTION, sample_pix2video


def ddim_sampler():
    """Deterministic DDIM (eta 0) along decreasing sigmas."""
    return comfy.samplers.KSAMPLER(inversion.sample_ddim)


def ddim_inversion_sampler():
    """Plain DDIM inversion along increasing (flipped) sigmas."""
    return comfy.samplers.KSAMPLER(inversion.sample_ddim_inversion)


def easyinv_sampler(eta: float, window_start: float, window_length: float, blend: str):
    """DDIM inversion with EasyInv's latent blending, for increasing sigmas."""
    return comfy.samplers.KSAMPLER(inversion.sample_easyinv, extra_options={
        "eta": eta, "window_start": window_start, "window_length": window_length, "blend": blend})


def pix2video_sampler(weight: float, guided_fraction: float = GUIDED_FRACTION, anchor: int = 0):
    """DDIM with Pix2Video's latent guidance toward the previous frame's predicted x0."""
    return comfy.samplers.KSAMPLER(sample_pix2video, extra_options={
        "weight": weight, "guided_fraction": guided_fraction, "anchor": anchor})


def sigma_table(model) -> torch.Tensor:
    """The model's training sigmas (float32, CPU), to build DDIM schedules from."""
    return model.get_model_object("model_sampling").sigmas.float().cpu()


def run_sampler(model, positive, negative, latent: dict, cfg: float, sampler, sigmas: torch.Tensor,
                seed: int, noise: torch.Tensor | None = None) -> dict:
    """comfy.sample with a progress bar per step; zero noise by default (the latent is already at sigmas[0]).

    With ``noise`` the clean latent is noised to ``sigmas[0]`` first, as img2img does.
    """
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    memo: dict = {}
    positive, negative = copy_conditioning(positive, memo), copy_conditioning(negative, memo)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
    noise = torch.zeros_like(samples) if noise is None else noise
    out = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative,
                                     samples, noise_mask=latent.get("noise_mask"), callback=callback,
                                     disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = {k: v for k, v in latent.items() if k != "samples"}
    result["samples"] = out
    return result
