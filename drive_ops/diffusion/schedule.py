"""Noise-schedule conversions for epsilon-prediction models (SD1.x), in k-diffusion form.

ComfyUI's samplers work in variance-exploding units: ``x = z / sqrt(alpha_bar)`` with
``sigma = sqrt((1 - alpha_bar) / alpha_bar)``, and the model returns the denoised
latent. Diffusers' schedulers work on variance-preserving ``z`` and integer timesteps.
These helpers move between the two so that our samplers and the diffusers reference
can be run at exactly the same noise levels.
"""

from __future__ import annotations

import torch


def scaled_linear_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012,
                                 train_steps: int = 1000) -> torch.Tensor:
    """SD1.x's ``alphas_cumprod`` [train_steps] (float32, "scaled_linear" betas, as diffusers builds it)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, train_steps, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sigma_from_alpha_cumprod(alpha_cumprod: torch.Tensor) -> torch.Tensor:
    """``sigma = sqrt((1 - a) / a)``; ``a = 1`` gives sigma 0 (a clean latent)."""
    return ((1.0 - alpha_cumprod) / alpha_cumprod) ** 0.5


def alpha_cumprod_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """``a = 1 / (1 + sigma^2)``: ComfyUI keeps only sigmas, this recovers ``alphas_cumprod``."""
    sigma = torch.as_tensor(sigma)
    return 1.0 / (1.0 + sigma * sigma)


def vp_scale(sigma: torch.Tensor | float) -> torch.Tensor:
    """``sqrt(1 + sigma^2)``: multiply a VP latent ``z`` by it to get the sampler's ``x``, divide to go back."""
    sigma = torch.as_tensor(sigma)
    return (1.0 + sigma * sigma) ** 0.5


def timestep_from_sigma(sigma_table: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Nearest training timestep (by log sigma) for each value of ``sigma``; ``sigma_table`` is [train_steps]."""
    sigma = torch.as_tensor(sigma, dtype=sigma_table.dtype, device=sigma_table.device)
    dists = (sigma.reshape(-1).log()[None, :] - sigma_table.log()[:, None]).abs()
    return dists.argmin(dim=0).reshape(sigma.shape)


def ddim_timesteps(steps: int, train_steps: int = 1000, offset: int = 1) -> torch.Tensor:
    """Diffusers' DDIM "leading" timesteps, ascending: ``k * (train_steps // steps) + offset`` for k < steps.

    With 50 steps this is 1, 21, ..., 981, the grid RAVE and DRIVE use.
    """
    if not 1 <= steps <= train_steps:
        raise ValueError(f"steps must be between 1 and {train_steps}, got {steps}")
    return torch.arange(steps) * (train_steps // steps) + offset


def ddim_sampling_sigmas(sigma_table: torch.Tensor, steps: int, final_sigma: float = 0.0) -> torch.Tensor:
    """Descending sigmas [steps + 1] at the DDIM timesteps, ending at ``final_sigma``.

    ComfyUI ends sampling at 0; diffusers' SD1.x DDIM ends at ``alphas_cumprod[0]``
    (sigma about 0.029): pass that as ``final_sigma`` to reproduce it exactly.
    """
    ts = ddim_timesteps(steps, sigma_table.shape[0])
    picked = sigma_table[ts].flip(0)
    return torch.cat([picked, picked.new_tensor([final_sigma])])


def ddim_inversion_sigmas(sigma_table: torch.Tensor, steps: int, start_sigma: float = 0.0) -> torch.Tensor:
    """Ascending sigmas [steps + 1] for inversion: ``start_sigma`` (the clean latent), then the DDIM timesteps."""
    ts = ddim_timesteps(steps, sigma_table.shape[0])
    picked = sigma_table[ts]
    return torch.cat([picked.new_tensor([start_sigma]), picked])


def step_index(sigmas: torch.Tensor, sigma: torch.Tensor | float, rtol: float = 1e-4) -> int:
    """Index of ``sigma`` in a schedule: which step of the run a model call belongs to.

    Raises ``ValueError`` when the sampler evaluates the model at a sigma outside the
    schedule (Heun, DPM-2 and other multi-stage samplers do): per-step state such as the
    grid permutation cannot follow such a sampler.
    """
    sigmas = torch.as_tensor(sigmas).reshape(-1).float().cpu()
    value = float(torch.as_tensor(sigma).reshape(-1)[0])
    hits = torch.nonzero(torch.isclose(sigmas, torch.tensor(value), rtol=rtol, atol=0.0)).reshape(-1)
    if hits.numel() == 0:
        raise ValueError(f"the sampler evaluated the model at sigma={value:.6g}, which is not one of the "
                         "scheduled sigmas; the DRIVE grid shuffle and CFG schedule need a sampler that calls "
                         "the model once per step at the scheduled sigmas (ddim, euler, euler_ancestral, "
                         "dpmpp_2m, lcm), not heun / dpm_2 / dpmpp_2s / uni_pc style multi-stage samplers")
    return int(hits[0])
