"""DRIVE's mask-guided CFG, in denoised space, and the pure-PyTorch guided denoiser.

DRIVE blends noise predictions: ``eps = M*eps_cfg + (1-M)*eps_uncond``. Since
``denoised = x - sigma*eps`` is affine in eps, the same blend on denoised latents is
exact, which is what ComfyUI's post-CFG hook hands us. The uncond branch is the
*negative* prompt (empty text in DRIVE), so the background follows it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..core.frame_plan import MULTIPLE, center_crop_span
from .rave_grid import grid_permutation, padded_length, run_on_grids
from .schedule import step_index

MASK_MODES = ("nearest", "area")


def mask_to_latent(mask: torch.Tensor, latent_h: int, latent_w: int, mode: str = "nearest",
                   threshold: float = 0.5, factor: int = MULTIPLE) -> torch.Tensor:
    """Pixel mask [T,H,W] -> binary latent mask [T,h,w] (float 0/1).

    A pixel mask is first cropped exactly as ComfyUI's VAE encode crops the frames
    (centred, to a multiple of ``factor``), so it stays aligned with the latents. Then
    - ``nearest`` (DRIVE): binarise at ``threshold``, keep one pixel per block;
    - ``area``: the fraction of each block that is covered, kept where it exceeds
      ``threshold`` (0 keeps any touched block: a dilation that saves thin parts).
    A mask already at latent size is only binarised.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
    if mask.dim() != 3:
        raise ValueError(f"expected a mask [T,H,W], got shape {tuple(mask.shape)}")
    mask = mask.float()
    height, width = mask.shape[-2:]
    if (height, width) == (latent_h, latent_w):
        return (mask > threshold).float()
    if (height // factor, width // factor) != (latent_h, latent_w):
        raise ValueError(f"the mask is {width}x{height} px but the latents belong to frames of about "
                         f"{latent_w * factor}x{latent_h * factor} px; give the mask at the video's size "
                         "(the one that was VAE-encoded)")
    top, crop_h = center_crop_span(height, factor)
    left, crop_w = center_crop_span(width, factor)
    mask = mask[:, top:top + crop_h, left:left + crop_w].unsqueeze(1)
    if mode == "nearest":
        small = F.interpolate((mask > threshold).float(), size=(latent_h, latent_w), mode="nearest")
    else:
        small = (F.avg_pool2d(mask, factor) > threshold).float()
    return small.squeeze(1)


def guidance_active(step: int, steps: int, cfg_start: float) -> bool:
    """DRIVE's ``cond_step_start``: CFG applies at step ``i`` only when ``i / steps > cfg_start``.

    The default 0 leaves the first step unguided, as DRIVE does; a negative value guides every step.
    """
    return step / steps > cfg_start


def uncond_needed(step: int, steps: int, cfg_start: float, has_mask: bool) -> bool:
    """Whether step ``step``'s result uses the uncond (negative-prompt) prediction at cfg 1.

    At cfg 1 the CFG result is the cond prediction, so only two things still read uncond:
    an unguided step (``cfg_start``) returns it, and a mask blends it in outside the object.
    Where neither holds, ComfyUI's cfg-1 shortcut (no uncond UNet pass) cannot change the result.
    """
    return has_mask or not guidance_active(step, steps, cfg_start)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``uncond + scale * (cond - uncond)`` (ComfyUI's order of operations)."""
    return uncond + (cond - uncond) * scale


def masked_cfg_blend(guided: torch.Tensor, uncond: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``M*guided + (1-M)*uncond`` for latents [T,C,h,w] and a latent mask [T,h,w] (None = everywhere)."""
    if mask is None:
        return guided
    if mask.shape[0] != guided.shape[0] or tuple(mask.shape[-2:]) != tuple(guided.shape[-2:]):
        raise ValueError(f"the latent mask {tuple(mask.shape)} does not match the latents "
                         f"{tuple(guided.shape)}; it needs one frame per latent frame at latent size")
    m = mask.to(device=guided.device, dtype=guided.dtype).unsqueeze(1)
    return guided * m + uncond * (1 - m)


def guided_denoiser(denoise: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], sigmas: torch.Tensor,
                    cfg: float, mask: torch.Tensor | None = None, cfg_start: float = 0.0, grid_size: int = 1,
                    shuffle: bool = False, seed: int = 0, max_grids_per_call: int = 0) -> Callable:
    """The DRIVE step model in pure PyTorch: grids -> cond/uncond -> CFG -> mask blend.

    ``denoise(x, sigma_batch, branch)`` returns denoised latents for ``branch`` 0 (cond) or
    1 (uncond). The result is a k-diffusion model ``fn(x [T,C,h,w], sigma_batch) -> denoised``
    for the schedule ``sigmas``; ``max_grids_per_call`` 0 means all grids in one call. This
    is what the ComfyUI patches compose from the same functions, without ComfyUI.
    """
    def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
        step = step_index(sigmas, sigma)
        perm = grid_permutation(x.shape[0], grid_size, seed, step, shuffle)
        n_grids = padded_length(x.shape[0], grid_size) // (grid_size * grid_size)
        per_call = max_grids_per_call if max_grids_per_call > 0 else n_grids

        def both(grids: torch.Tensor, _part: slice) -> list[torch.Tensor]:
            s = sigma[:1].expand(grids.shape[0])
            return [denoise(grids, s, 0), denoise(grids, s, 1)]

        cond, uncond = run_on_grids(both, x, perm, grid_size, per_call)
        if not guidance_active(step, len(sigmas) - 1, cfg_start):
            return uncond
        return masked_cfg_blend(cfg_combine(cond, uncond, cfg), uncond, mask)

    return model
