"""Pix2Video's guided latent update as a k-diffusion-style sampler.

After each of the first steps (Pix2Video: 26 of 50), every frame's latent is nudged so
that its predicted x0 moves toward the previous frame's predicted x0 at the same step
(docs/algorithms.md, Pix2Video). The original takes the gradient of
``weight * mse(x0_prev, x0_cur)`` with respect to the detached x0_cur and subtracts it
from the DDIM (VP) latent:

    x_vp[f] -= weight * 2 / (C*H*W) * (x0[f] - x0[prev(f)])

ComfyUI samples in VE units, x = x_vp * sqrt(1 + sigma^2) (sigma of the latent being
updated, i.e. the next sigma), so the same step there is scaled by sqrt(1 + sigma_next^2).
Latents are the scaled ones in both (ComfyUI's process_latent_in = diffusers' 0.18215).

The batched form is exact: frame f only needs frame prev(f)'s x0 at the same step, which
the one batched model call already produced. "Previous" is the neighbour toward the anchor
frame (frame f-1 when the anchor is 0), which stays unguided.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .cross_frame_attention import neighbour_toward_anchor
from .inversion import ddim_step, report_step

GUIDED_FRACTION = 0.52
"""Pix2Video guides the first 26 of 50 steps."""


def guided_steps(num_steps: int, guided_fraction: float) -> int:
    """How many of the first steps get the update (26 of 50 at Pix2Video's 0.52)."""
    if not 0.0 <= guided_fraction <= 1.0:
        raise ValueError(f"guided_fraction must be between 0 and 1, got {guided_fraction}")
    return int(round(num_steps * guided_fraction))


def guidance_step(x0: torch.Tensor, sigma_next: torch.Tensor | float, weight: float, anchor: int = 0) -> torch.Tensor:
    """The VE-space correction to subtract from x_next: [F, C, H, W] like x0.

    weight * 2/(C*H*W) * (x0[f] - x0[prev(f)]) * sqrt(1 + sigma_next^2); zero for the anchor.
    """
    prev = neighbour_toward_anchor(x0.shape[0], anchor).to(x0.device)
    per_element = weight * 2.0 / x0[0].numel()
    scale = (1.0 + torch.as_tensor(sigma_next, dtype=x0.dtype, device=x0.device) ** 2) ** 0.5
    return per_element * scale * (x0 - x0[prev])


@torch.no_grad()
def sample_pix2video(model: Callable, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                     callback: Callable | None = None, disable: bool | None = None, weight: float = 100.0,
                     guided_fraction: float = GUIDED_FRACTION, anchor: int = 0,
                     schedule_steps: int | None = None) -> torch.Tensor:
    """Deterministic DDIM (Euler on the probability-flow ODE) plus Pix2Video's latent guidance.

    model(x, sigma * ones[B], **extra_args) -> denoised x0 (after CFG), x: [F, C, H, W] in
    frame order, sigmas: decreasing, ending at 0. Returns the final latent. The guided
    share counts steps of ``schedule_steps``, the full schedule a partial edit (denoise < 1)
    is the tail of; by default all of ``sigmas``.
    """
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    steps = len(sigmas) - 1
    total = steps if schedule_steps is None else schedule_steps
    guided = guided_steps(total, guided_fraction) - (total - steps)
    for i in range(steps):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        report_step(callback, i, x, sigmas[i], denoised)
        x = ddim_step(x, denoised, sigmas[i], sigmas[i + 1])
        if i < guided and weight != 0.0:
            x = x - guidance_step(denoised, sigmas[i + 1], weight, anchor)
    return x
