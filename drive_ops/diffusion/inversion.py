"""Deterministic DDIM sampling and DDIM / EasyInv inversion as k-diffusion samplers.

Every sampler has the k-diffusion signature ``fn(model, x, sigmas, extra_args, callback,
disable, **options)``: ``model(x, sigma_batch, **extra_args)`` returns the denoised latent
for the variance-exploding ``x = z / sqrt(alpha_bar)`` (ComfyUI's convention, see
``drive_ops.diffusion.schedule``), ``x`` is ``[B,C,h,w]`` and ``sigmas`` is 1-D.

DDIM with eta 0 is an Euler step in sigma space: with ``eps = (x - denoised) / sigma``,
``x' = x + (sigma' - sigma) * eps``. Sampling evaluates eps at the current level.
Inversion runs along increasing sigmas and, like diffusers' ``DDIMInverseScheduler`` and
RAVE, evaluates eps at the *target* level on the current latent (the usual DDIM-inversion
approximation ``eps(z_{t-1}, t)``); this pairs each inversion step with the sampling step
that undoes it, and never divides by the near-zero first sigma.
"""

from __future__ import annotations

from typing import Callable

import torch

from .schedule import vp_scale

BLEND_MODES = ("after", "before")


def report_step(callback: Callable | None, i: int, x: torch.Tensor, sigma: torch.Tensor,
                denoised: torch.Tensor) -> None:
    """The k-diffusion sampler callback (ComfyUI's latent preview and step bar), when there is one."""
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})


def ddim_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM (eta 0) step ``sigma -> sigma_next`` from the model's denoised estimate.

    An Euler step of the probability-flow ODE in sigma: ``x + (sigma_next - sigma) * eps``
    with ``eps = (x - denoised) / sigma``. The one sampling step of the pack (DDIM and Pix2Video).
    """
    return x + (x - denoised) * ((sigma_next - sigma) / sigma)


@torch.no_grad()
def sample_ddim(model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                callback: Callable | None = None, disable: bool | None = None) -> torch.Tensor:
    """DDIM (eta 0) along decreasing ``sigmas``: one model call per step at the current sigma."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        x = ddim_step(x, denoised, sigma, sigma_next)
        report_step(callback, i, x, sigma, denoised)
    return x


def inversion_eps(model, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                  extra_args: dict) -> torch.Tensor:
    """eps for the inversion step ``sigma -> sigma_next``: the model sees ``x``'s VP latent at ``sigma_next``."""
    if float(sigma_next) <= 0.0:
        raise ValueError("inversion needs increasing sigmas above 0 (flip the sampling sigmas)")
    x_in = x * (vp_scale(sigma_next) / vp_scale(sigma))
    return (x_in - model(x_in, sigma_next * x.new_ones([x.shape[0]]), **extra_args)) / sigma_next


def ddim_inversion_step(model, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                        extra_args: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One inversion step ``sigma -> sigma_next`` (increasing); returns (x at sigma_next, x0 estimate)."""
    eps = inversion_eps(model, x, sigma, sigma_next, extra_args)
    return x + (sigma_next - sigma) * eps, x - sigma * eps


def in_easyinv_window(i: int, steps: int, window_start: float, window_length: float) -> bool:
    """EasyInv's window: ``start*N < i < (start+length)*N`` (strict) and never the first step."""
    return i > 0 and window_start * steps < i < (window_start + window_length) * steps


def easyinv_first_steps(window_start: float, window_length: float, limit: int = 10_000) -> int | None:
    """The smallest step count at which at least one inversion step falls in EasyInv's window.

    With fewer steps EasyInv is plain DDIM inversion, bit for bit (for the SD1.x window
    0.05 + 0.2 that is 4 steps or fewer). None when no count up to ``limit`` has one.
    """
    for steps in range(1, limit + 1):
        if any(in_easyinv_window(i, steps, window_start, window_length) for i in range(steps)):
            return steps
    return None


@torch.no_grad()
def sample_easyinv(model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                   callback: Callable | None = None, disable: bool | None = None, eta: float = 0.5,
                   window_start: float = 0.05, window_length: float = 0.2,
                   blend: str = "after") -> torch.Tensor:
    """EasyInv: DDIM inversion that, inside a window of steps, sets ``z <- eta*z + (1-eta)*z_prev``.

    The blend is on variance-preserving latents ``z = x / sqrt(1 + sigma^2)``:
    - ``after`` (the README recipe): blend each step's output with the previous output;
    - ``before`` (the authors' SD-1.4 code): blend the step's input with the previous
      step's input, while eps is still computed from the unblended input.
    ``z_prev`` is always the previous (blended) latent. Done in x units as
    ``x <- eta*x + (1-eta)*sqrt(1+sigma^2)*z_prev``, so ``eta = 1`` is plain DDIM inversion, bit for bit.
    """
    if blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES}, got {blend!r}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    extra_args = {} if extra_args is None else extra_args
    steps = len(sigmas) - 1
    prev_vp = None
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        active = prev_vp is not None and in_easyinv_window(i, steps, window_start, window_length)
        if blend == "before":
            eps = inversion_eps(model, x, sigma, sigma_next, extra_args)
            if active:
                x = eta * x + (1.0 - eta) * vp_scale(sigma) * prev_vp
            prev_vp = x / vp_scale(sigma)
            denoised = x - sigma * eps
            x = x + (sigma_next - sigma) * eps
        else:
            x, denoised = ddim_inversion_step(model, x, sigma, sigma_next, extra_args)
            if active:
                x = eta * x + (1.0 - eta) * vp_scale(sigma_next) * prev_vp
            prev_vp = x / vp_scale(sigma_next)
        report_step(callback, i, x, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_ddim_inversion(model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                          callback: Callable | None = None, disable: bool | None = None) -> torch.Tensor:
    """Plain DDIM inversion along increasing ``sigmas`` (EasyInv with eta 1)."""
    extra_args = {} if extra_args is None else extra_args
    for i in range(len(sigmas) - 1):
        x, denoised = ddim_inversion_step(model, x, sigmas[i], sigmas[i + 1], extra_args)
        report_step(callback, i, x, sigmas[i + 1], denoised)
    return x
