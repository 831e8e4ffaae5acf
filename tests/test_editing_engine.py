"""The editing engine against a small random diffusers UNet: diffusers parity, inversion, masked CFG, grids.

The UNet's output convolution is scaled by 0.1 so that its random eps field is smooth
enough for the ODE discretisation to converge (the reconstruction test needs that); it
is still a real UNet2DConditionModel with cross-attention on both branches.
"""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion import inversion, masked_cfg, schedule
from tiny_unet import eps_denoiser

KW = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1)


@pytest.fixture(scope="module")
def unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    net = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                               block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                               attention_head_dim=4, norm_num_groups=8).eval()
    with torch.no_grad():
        net.conv_out.weight.mul_(0.1)
        net.conv_out.bias.mul_(0.1)
    return net


@pytest.fixture(scope="module")
def table():
    return schedule.sigma_from_alpha_cumprod(schedule.scaled_linear_alphas_cumprod())


@pytest.fixture(scope="module")
def contexts():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(1, 8, 16, generator=gen), torch.randn(1, 8, 16, generator=gen)


def rel(a, b):
    return float((a - b).norm() / b.norm())


def test_ddim_inversion_matches_diffusers(unet, table, contexts):
    from diffusers import DDIMInverseScheduler

    z0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    ref = DDIMInverseScheduler(**KW)
    ref.set_timesteps(6)
    z = z0.clone()
    with torch.no_grad():
        for t in ref.timesteps:
            z = ref.step(unet(z, t, encoder_hidden_states=contexts[0].expand(2, -1, -1)).sample, t, z).prev_sample
    sig = schedule.ddim_inversion_sigmas(table, 6)
    ours = inversion.sample_ddim_inversion(eps_denoiser(unet, table, contexts[0]), z0.clone(), sig)
    assert rel(ours / schedule.vp_scale(sig[-1]), z) <= 1e-5


def test_ddim_sampling_matches_diffusers(unet, table, contexts):
    from diffusers import DDIMScheduler

    z0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    ref = DDIMScheduler(**KW, set_alpha_to_one=False)
    ref.set_timesteps(6)
    z = z0.clone()
    with torch.no_grad():
        for t in ref.timesteps:
            z = ref.step(unet(z, t, encoder_hidden_states=contexts[0].expand(2, -1, -1)).sample, t, z,
                         eta=0.0).prev_sample
    sig = schedule.ddim_sampling_sigmas(table, 6, final_sigma=float(table[0]))
    ours = inversion.sample_ddim(eps_denoiser(unet, table, contexts[0]), z0 * schedule.vp_scale(sig[0]), sig)
    assert rel(ours / schedule.vp_scale(sig[-1]), z) <= 1e-5


def test_invert_then_sample_reconstructs_better_with_more_steps(unet, table, contexts):
    den = eps_denoiser(unet, table, contexts[0])
    z0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    errors = {}
    for steps in (4, 16, 64):
        sig = schedule.ddim_inversion_sigmas(table, steps)
        rec = inversion.sample_ddim(den, inversion.sample_ddim_inversion(den, z0.clone(), sig), sig.flip(0))
        errors[steps] = rel(rec, z0)
    print("invert->sample relative reconstruction error by steps:", errors)
    assert errors[64] < errors[16] < errors[4] < 0.1


@pytest.mark.parametrize("blend", ["after", "before"])
def test_easyinv_eta_one_is_ddim_exactly_and_other_eta_changes_the_window(unet, table, contexts, blend):
    den = eps_denoiser(unet, table, contexts[0])
    z0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    sig = schedule.ddim_inversion_sigmas(table, 10)
    ddim = inversion.sample_ddim_inversion(den, z0.clone(), sig)
    assert torch.equal(inversion.sample_easyinv(den, z0.clone(), sig, eta=1.0, blend=blend), ddim)
    trace = []
    inversion.sample_easyinv(den, z0.clone(), sig, eta=0.5, blend=blend, callback=lambda d: trace.append(d["x"]))
    ddim_trace = []
    inversion.sample_ddim_inversion(den, z0.clone(), sig, callback=lambda d: ddim_trace.append(d["x"]))
    # the window 0.05-0.25 of 10 steps is i = 1, 2: step 0 is untouched, step 1's output already differs
    assert torch.equal(trace[0], ddim_trace[0])
    assert not torch.allclose(trace[1], ddim_trace[1])


def test_easyinv_blend_after_is_the_vp_average(table):
    """With a model that predicts denoised = 0 (eps = x/sigma), check one blended step by hand."""
    def zero_model(x, sigma, **_):
        return torch.zeros_like(x)

    sig = schedule.ddim_inversion_sigmas(table, 10)
    xs = []
    x0 = torch.ones(1, 1, 1, 1)
    inversion.sample_easyinv(zero_model, x0, sig, eta=0.25, callback=lambda d: xs.append(d["x"]))
    plain = []
    inversion.sample_ddim_inversion(zero_model, x0, sig, callback=lambda d: plain.append(d["x"]))
    vp_prev = xs[0] / schedule.vp_scale(sig[1])
    step1 = inversion.ddim_inversion_step(zero_model, xs[0], sig[1], sig[2], {})[0]
    expected = 0.25 * step1 + 0.75 * vp_prev * schedule.vp_scale(sig[2])
    assert torch.allclose(xs[1], expected, rtol=1e-6)


def _sampler_run(unet, table, contexts, x, **options):
    cond, uncond = (eps_denoiser(unet, table, c) for c in contexts)
    sig = schedule.ddim_sampling_sigmas(table, 3)
    model = masked_cfg.guided_denoiser(lambda g, s, b: (cond if b == 0 else uncond)(g, s), sig, **options)
    return inversion.sample_ddim(model, x.clone(), sig), sig


@pytest.fixture(scope="module")
def noisy(table):
    return torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(6)) * schedule.vp_scale(table[667])


def test_masked_sampler_zero_mask_is_uncond_and_one_mask_is_plain_cfg(unet, table, contexts, noisy):
    zeros, ones = torch.zeros(5, 8, 8), torch.ones(5, 8, 8)
    got0, sig = _sampler_run(unet, table, contexts, noisy, cfg=7.5, mask=zeros, cfg_start=-1.0)
    uncond_only = inversion.sample_ddim(eps_denoiser(unet, table, contexts[1]), noisy.clone(), sig)
    assert torch.allclose(got0, uncond_only, atol=1e-5, rtol=1e-5)
    got1, _ = _sampler_run(unet, table, contexts, noisy, cfg=7.5, mask=ones, cfg_start=-1.0)
    plain, _ = _sampler_run(unet, table, contexts, noisy, cfg=7.5, mask=None, cfg_start=-1.0)
    assert torch.equal(got1, plain)
    c, u = (eps_denoiser(unet, table, ctx) for ctx in contexts)
    by_hand = inversion.sample_ddim(lambda x, s: masked_cfg.cfg_combine(c(x, s), u(x, s), 7.5), noisy.clone(), sig)
    assert torch.allclose(plain, by_hand, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain, uncond_only, atol=1e-3)
    half = torch.zeros(5, 8, 8)
    half[:, :, 4:] = 1.0
    mixed, _ = _sampler_run(unet, table, contexts, noisy, cfg=7.5, mask=half, cfg_start=-1.0)
    assert not torch.allclose(mixed, plain, atol=1e-3) and not torch.allclose(mixed, uncond_only, atol=1e-3)


def test_cfg_start_zero_leaves_the_first_step_unguided(unet, table, contexts, noisy):
    sig = schedule.ddim_sampling_sigmas(table, 3)
    cond, uncond = (eps_denoiser(unet, table, c) for c in contexts)
    model = masked_cfg.guided_denoiser(lambda g, s, b: (cond if b == 0 else uncond)(g, s), sig, cfg=7.5)
    first = model(noisy, sig[0].expand(5))
    assert torch.allclose(first, uncond(noisy, sig[0].expand(5)), atol=1e-6)


def test_grid_size_one_is_per_frame_and_chunked_equals_unchunked(unet, table, contexts, noisy):
    per_frame, _ = _sampler_run(unet, table, contexts, noisy, cfg=5.0, cfg_start=-1.0)
    shuffled_g1, _ = _sampler_run(unet, table, contexts, noisy, cfg=5.0, cfg_start=-1.0, grid_size=1,
                                  shuffle=True, seed=3)
    assert torch.allclose(shuffled_g1, per_frame, atol=1e-5, rtol=1e-5)
    opts = dict(cfg=5.0, cfg_start=-1.0, grid_size=2, shuffle=True, seed=3)
    whole, _ = _sampler_run(unet, table, contexts, noisy, max_grids_per_call=0, **opts)
    chunked, _ = _sampler_run(unet, table, contexts, noisy, max_grids_per_call=1, **opts)
    assert torch.allclose(chunked, whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(whole, per_frame, atol=1e-3)


def test_uncond_needed_at_cfg_1_only_where_the_result_reads_it():
    # 4 steps, cfg_start 0: step 0 is unguided (returns uncond); a mask reads uncond outside it at every step
    assert [masked_cfg.uncond_needed(i, 4, 0.0, has_mask=False) for i in range(4)] == [True, False, False, False]
    assert [masked_cfg.uncond_needed(i, 4, -1.0, has_mask=False) for i in range(4)] == [False] * 4
    assert [masked_cfg.uncond_needed(i, 4, -1.0, has_mask=True) for i in range(4)] == [True] * 4
    assert [masked_cfg.uncond_needed(i, 4, 0.5, has_mask=False) for i in range(4)] == [True, True, True, False]


def test_easyinv_acts_from_five_steps_with_the_sd1_window():
    assert inversion.easyinv_first_steps(0.05, 0.2) == 5  # 4 steps: 0.2 < i < 1.0 holds for no step
    assert not any(inversion.in_easyinv_window(i, 4, 0.05, 0.2) for i in range(4))
    assert [i for i in range(5) if inversion.in_easyinv_window(i, 5, 0.05, 0.2)] == [1]
    assert inversion.easyinv_first_steps(0.85, 0.1) == 7  # the SDXL window
    assert inversion.easyinv_first_steps(0.5, 0.0) is None  # an empty window never acts
