"""Pix2Video latent guidance: it pulls consecutive predicted x0 together and leaves the anchor alone."""

from __future__ import annotations

import pytest
import torch
from tiny_unet import tiny_unet

from drive_ops.diffusion.inversion import sample_ddim
from drive_ops.diffusion.pix2video import guidance_step, guided_steps, sample_pix2video

FRAMES, STEPS = 4, 6


def _sigmas(steps: int) -> torch.Tensor:
    """SD1.5's discrete schedule at DDIM-uniform timesteps in ComfyUI's sigma units, ending at 0."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, 0)
    ts = torch.arange(1, 1000, 1000 // steps).flip(0)
    return torch.cat([((1 - alphas[ts]) / alphas[ts]).sqrt(), torch.zeros(1, dtype=torch.float64)]).float()


def gaussian_denoiser(x, sigma, **_):
    """Exact x0 estimate for data ~ N(0, 0.5^2) per element."""
    s2 = 0.25
    return x * s2 / (s2 + sigma.view(-1, 1, 1, 1) ** 2)


def unet_denoiser(unet):
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    log_sigmas = (((1 - torch.cumprod(1 - betas, 0)) / torch.cumprod(1 - betas, 0)).sqrt()).log()
    cond = torch.zeros(FRAMES, 5, 32)

    def model(x, sigma, **_):
        t = (log_sigmas[None] - sigma.double().log()[:, None]).abs().argmin(1)
        eps = unet(x / (1 + sigma.view(-1, 1, 1, 1) ** 2) ** 0.5, t, encoder_hidden_states=cond).sample
        return x - sigma.view(-1, 1, 1, 1) * eps
    return model


def _run(model, weight: float):
    sigmas = _sigmas(STEPS)
    noise = torch.randn(FRAMES, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    x0s: list[torch.Tensor] = []
    out = sample_pix2video(model, noise * sigmas[0], sigmas, callback=lambda d: x0s.append(d["denoised"]),
                           weight=weight, guided_fraction=0.5)
    return out, x0s


def _consecutive_distance(x: torch.Tensor) -> float:
    return float((x[1:] - x[:-1]).pow(2).mean().sqrt())


@pytest.mark.parametrize("which", ["analytic", "tiny_unet"])
def test_update_lowers_distance_between_consecutive_x0(which):
    model = gaussian_denoiser if which == "analytic" else unet_denoiser(tiny_unet())
    with torch.no_grad():
        plain, plain_x0 = _run(model, 0.0)
        guided, guided_x0 = _run(model, 10.0)
    for step in range(1, STEPS):             # every step after the first update sees closer x0 predictions
        assert _consecutive_distance(guided_x0[step]) < _consecutive_distance(plain_x0[step]), step
    assert _consecutive_distance(guided) < _consecutive_distance(plain)
    torch.testing.assert_close(guided[0], plain[0], rtol=0, atol=0)     # the anchor frame is never nudged


def test_step_size_matches_the_spec():
    assert guided_steps(50, 0.52) == 26
    x0 = torch.zeros(3, 4, 64, 64)
    x0[1] = 1.0
    step = guidance_step(x0, sigma_next=0.0, weight=100.0)
    # Pix2Video: x_vp -= 100 * 2/16384 * (x0[f] - x0[f-1]); at sigma 0 VE and VP coincide
    assert torch.allclose(step[1], torch.full_like(step[1], 200 / 16384))
    assert torch.allclose(step[2], torch.full_like(step[2], -200 / 16384))
    assert step[0].abs().max() == 0
    scaled = guidance_step(x0, sigma_next=3.0, weight=100.0)
    torch.testing.assert_close(scaled, step * 10 ** 0.5)
    with pytest.raises(ValueError, match="guided_fraction"):
        guided_steps(50, 1.5)


def test_without_guidance_it_is_the_ddim_sampler():
    """One DDIM step serves both samplers: weight 0 gives sample_ddim's result bit for bit."""
    sigmas = _sigmas(STEPS)
    noise = torch.randn(FRAMES, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    with torch.no_grad():
        plain = sample_pix2video(gaussian_denoiser, noise, sigmas, weight=0.0)
        ddim = sample_ddim(gaussian_denoiser, noise, sigmas)
    assert torch.equal(plain, ddim)
