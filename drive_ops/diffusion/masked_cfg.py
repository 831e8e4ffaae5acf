"""DRIVE's mask-guided CFG, in denoised space, and the pure-PyTorch guided denoiser.

DRIVE blends noise predictions: ``eps = M*eps_cfg + (1-M)*eps_uncond``. Since
``denoised = x - sigma*eps`` is affine in eps, the same blend on denoised latents is
exact, which is what ComfyUI's post-CFG hook hands us. In DRIVE the uncond branch, the
*negative* prompt (empty text), also drives the background; a separate *background*
prediction can take that role, ``M*eps_cfg + (1-M)*eps_background``, so the negative
prompt only steers CFG inside the mask.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..core.frame_plan import MULTIPLE, center_crop_span
from .latent_mask import broadcast_latent_mask
from .rave_grid import fitted_grid_size, grid_permutation, padded_length, run_on_grids
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


def guidance_active(step: int, steps: int, cfg_start: float, schedule_steps: int | None = None) -> bool:
    """DRIVE's ``cond_step_start``: CFG applies at step ``i`` only when ``i / N > cfg_start``.

    The default 0 leaves the first step unguided, as DRIVE does; a negative value guides
    every step. ``step`` counts the ``steps`` being run; a partial edit (denoise < 1) runs the
    last ``steps`` of a ``schedule_steps`` schedule, and ``i`` and ``N`` are measured on that one.
    """
    total = steps if schedule_steps is None else schedule_steps
    return (step + total - steps) / total > cfg_start


def uncond_needed(step: int, steps: int, cfg_start: float, has_mask: bool,
                  schedule_steps: int | None = None) -> bool:
    """Whether step ``step``'s result uses the uncond (negative-prompt) prediction at cfg 1.

    At cfg 1 the CFG result is the cond prediction, so only two things still read uncond:
    an unguided step (``cfg_start``, on the ``schedule_steps`` schedule of a partial edit)
    returns it, and a mask blends it in outside the object. Where neither holds, ComfyUI's
    cfg-1 shortcut (no uncond UNet pass) cannot change the result.
    """
    return has_mask or not guidance_active(step, steps, cfg_start, schedule_steps)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``uncond + scale * (cond - uncond)`` (ComfyUI's order of operations)."""
    return uncond + (cond - uncond) * scale


def masked_cfg_blend(guided: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``M*guided + (1-M)*outside`` for latents [T,C,h,w] and a latent mask [T,h,w], or video latents
    [B,C,T',h,w] and a mask [T',h,w] (None = everywhere).

    ``outside`` is the uncond prediction (DRIVE) or the background prompt's.
    """
    if mask is None:
        return guided
    m = broadcast_latent_mask(mask, guided)
    return guided * m + outside * (1 - m)


def guided_denoiser(denoise: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], sigmas: torch.Tensor,
                    cfg: float, mask: torch.Tensor | None = None, cfg_start: float = 0.0, grid_size: int = 1,
                    shuffle: bool = False, seed: int = 0, max_grids_per_call: int = 0, background: bool = False,
                    schedule_steps: int | None = None) -> Callable:
    """The DRIVE step model in pure PyTorch: grids -> cond/uncond (/background) -> CFG -> mask blend.

    ``denoise(x, sigma_batch, branch)`` returns denoised latents for ``branch`` 0 (cond),
    1 (uncond) or, with ``background``, 2 (the background prompt, which then drives the
    area outside ``mask``). The result is a k-diffusion model ``fn(x [T,C,h,w], sigma_batch)
    -> denoised`` for the schedule ``sigmas`` (the last steps of a ``schedule_steps`` one for
    a partial edit); ``max_grids_per_call`` 0 means all grids in one call. This is what the
    ComfyUI patches compose from the same functions, without ComfyUI.
    """
    branches = (0, 1, 2) if background and mask is not None else (0, 1)

    def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
        step = step_index(sigmas, sigma)
        g, _note = fitted_grid_size(x.shape[0], grid_size)
        perm = grid_permutation(x.shape[0], g, seed, step, shuffle)
        n_grids = padded_length(x.shape[0], g) // (g * g)
        per_call = max_grids_per_call if max_grids_per_call > 0 else n_grids

        def run(grids: torch.Tensor, _part: slice) -> list[torch.Tensor]:
            s = sigma[:1].expand(grids.shape[0])
            return [denoise(grids, s, b) for b in branches]

        cond, uncond, *rest = run_on_grids(run, x, perm, g, per_call)
        outside = rest[0] if rest else uncond
        if not guidance_active(step, len(sigmas) - 1, cfg_start, schedule_steps):
            return masked_cfg_blend(uncond, outside, mask) if rest else uncond
        return masked_cfg_blend(cfg_combine(cond, uncond, cfg), outside, mask)

    return model
