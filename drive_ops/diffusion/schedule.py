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


def partial_steps(steps: int, denoise: float) -> int:
    """Steps a partial edit runs: the lowest ``floor(steps * denoise)`` of the full schedule (diffusers' strength).

    The EasyInv window and ``cfg_start`` stay fractions of the full ``steps``, so a partial
    run is exactly the tail (sampling) or the head (inversion) of the full one.
    """
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise must be in (0, 1], got {denoise}")
    run = int(steps * denoise + 1e-6)
    if run < 1:
        raise ValueError(f"denoise {denoise} of {steps} steps leaves no step to run; raise denoise to at least "
                         f"{1 / steps:.3g} or use more steps")
    return run


def ddim_sampling_sigmas(sigma_table: torch.Tensor, steps: int, final_sigma: float = 0.0,
                         denoise: float = 1.0) -> torch.Tensor:
    """Descending sigmas [run + 1] at the DDIM timesteps, ending at ``final_sigma``.

    ``run = partial_steps(steps, denoise)``: a partial edit is the last ``run`` steps of the
    ``steps``-step schedule. ComfyUI ends sampling at 0; diffusers' SD1.x DDIM ends at
    ``alphas_cumprod[0]`` (sigma about 0.029): pass that as ``final_sigma`` to reproduce it exactly.
    """
    ts = ddim_timesteps(steps, sigma_table.shape[0])[:partial_steps(steps, denoise)]
    picked = sigma_table[ts].flip(0)
    return torch.cat([picked, picked.new_tensor([final_sigma])])


def ddim_inversion_sigmas(sigma_table: torch.Tensor, steps: int, start_sigma: float = 0.0,
                          denoise: float = 1.0) -> torch.Tensor:
    """Ascending sigmas [run + 1] for inversion: ``start_sigma`` (the clean latent), then the DDIM timesteps.

    With ``denoise`` < 1 the inversion stops after the first ``run = partial_steps(steps, denoise)``
    steps, where the matching partial edit starts.
    """
    ts = ddim_timesteps(steps, sigma_table.shape[0])[:partial_steps(steps, denoise)]
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
                         "dpmpp_2m, lcm, uni_pc, ...), not a multi-stage one (heun, dpm_2, dpmpp_2s_ancestral, "
                         "dpmpp_sde, seeds_2, dpm_fast, ...)")
    return int(hits[0])


INVERSION_RECORD_KEY = "drive_inversion"
"""The LATENT key under which Invert Video (DRIVE) records the schedule it inverted along."""


def inversion_record(steps: int, denoise: float, final_sigma: float, method: str,
                     source: torch.Tensor | None = None) -> dict:
    """What an inverted latent remembers: its schedule (the sampler must start where it ended) and its source.

    ``source`` is the clean latent [T,C,h,w] the inversion started from (what a noise mask
    keeps outside the edit).
    """
    return {"steps": int(steps), "denoise": float(denoise), "final_sigma": float(final_sigma), "method": method,
            "source": source}


def check_inversion_record(record: dict | None, steps: int, denoise: float, first_sigma: float,
                           rtol: float = 1e-4) -> None:
    """Raise when a sampler's schedule would not start where the recorded inversion ended.

    No record (a latent from elsewhere, or one that went through nodes that drop extra keys)
    is not an error: then the sampler's settings are trusted.
    """
    if record is None:
        return
    if record["steps"] != steps:
        raise ValueError(f"this latent was inverted with {record['steps']} steps but the sampler is set to {steps}; "
                         f"set the sampler's steps to {record['steps']} (or invert again with {steps}): sampling "
                         "must start where the inversion ended")
    if abs(record["denoise"] - denoise) > 1e-6:
        raise ValueError(f"this latent was inverted with denoise {record['denoise']:g} but the sampler is set to "
                         f"denoise {denoise:g}; set the sampler's denoise to {record['denoise']:g} (or invert again "
                         f"with {denoise:g})")
    final = record["final_sigma"]
    if abs(first_sigma - final) > rtol * max(abs(final), 1e-8):
        raise ValueError(f"the inversion ended at sigma {final:.6g} but the sampler starts at sigma "
                         f"{first_sigma:.6g}: the two nodes see different noise schedules; invert with the same "
                         "model (and model-sampling patches) you sample with")
