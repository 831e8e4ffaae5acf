"""Partial edits (denoise < 1), the inversion's schedule record, the background branch and EasyInv's SDXL rule.

A partial run must be exactly a piece of the full one: the inversion the head, the
sampling the tail, with the EasyInv window and ``cfg_start`` measured on the full
schedule. The tiny UNet is the editing-engine tests' (output scaled for a smooth eps).
"""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion import inversion, masked_cfg, schedule
from tiny_unet import eps_denoiser, tiny_unet


@pytest.fixture(scope="module")
def table():
    return schedule.sigma_from_alpha_cumprod(schedule.scaled_linear_alphas_cumprod())


@pytest.fixture(scope="module")
def branches(table):
    unet = tiny_unet(3)
    with torch.no_grad():
        unet.conv_out.weight.mul_(0.1)
        unet.conv_out.bias.mul_(0.1)
    gen = torch.Generator().manual_seed(4)
    contexts = [torch.randn(1, 5, 32, generator=gen) for _ in range(3)]   # edit, negative, background prompts
    return [eps_denoiser(unet, table, c) for c in contexts]


def test_partial_schedules_are_the_head_and_the_tail_of_the_full_one(table):
    assert schedule.partial_steps(50, 0.6) == 30 and schedule.partial_steps(50, 0.58) == 29
    assert schedule.partial_steps(10, 1.0) == 10
    full_inv, full_smp = schedule.ddim_inversion_sigmas(table, 10), schedule.ddim_sampling_sigmas(table, 10)
    inv, smp = schedule.ddim_inversion_sigmas(table, 10, denoise=0.4), schedule.ddim_sampling_sigmas(table, 10, denoise=0.4)
    assert torch.equal(inv, full_inv[:5]) and torch.equal(smp, full_smp[-5:])
    assert float(inv[-1]) == float(smp[0])       # the partial edit starts where the partial inversion ended
    with pytest.raises(ValueError, match="at least 0.1"):
        schedule.partial_steps(10, 0.05)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        schedule.partial_steps(10, 1.5)


@pytest.mark.parametrize("blend", ["after", "before"])
def test_partial_easyinv_is_the_head_of_the_full_run(table, branches, blend):
    """The window is measured on the full 20 steps (SDXL-like window 0.2-0.4: steps 5..7), so the partial
    inversion's steps are the full run's first steps, bit for bit; measured on its own 10 it would not be."""
    den = branches[1]
    z0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    full_sig = schedule.ddim_inversion_sigmas(table, 20)
    trace = []
    opts = dict(eta=0.5, window_start=0.2, window_length=0.2, blend=blend)
    inversion.sample_easyinv(den, z0.clone(), full_sig, callback=lambda d: trace.append(d["x"]), **opts)
    part_sig = schedule.ddim_inversion_sigmas(table, 20, denoise=0.5)
    part = inversion.sample_easyinv(den, z0.clone(), part_sig, schedule_steps=20, **opts)
    assert torch.equal(part, trace[9])
    own_window = inversion.sample_easyinv(den, z0.clone(), part_sig, **opts)
    assert not torch.allclose(own_window, trace[9], atol=1e-4)


def test_partial_sampling_is_the_tail_of_the_full_run(table, branches):
    """cfg_start 0.5 of 10 steps guides steps 6..9; the partial run (last 6 steps) guides the same steps."""
    cond, uncond, _ = branches
    x = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(8)) * schedule.vp_scale(table[901])
    mask = torch.zeros(3, 8, 8)
    mask[:, 2:6, 2:6] = 1.0
    full_sig = schedule.ddim_sampling_sigmas(table, 10)
    opts = dict(cfg=6.0, mask=mask, cfg_start=0.5, grid_size=1)
    trace = []
    full = inversion.sample_ddim(masked_cfg.guided_denoiser(lambda g, s, b: (cond, uncond)[b](g, s), full_sig, **opts),
                                 x.clone(), full_sig, callback=lambda d: trace.append(d["x"]))
    part_sig = schedule.ddim_sampling_sigmas(table, 10, denoise=0.6)
    step_model = masked_cfg.guided_denoiser(lambda g, s, b: (cond, uncond)[b](g, s), part_sig, schedule_steps=10, **opts)
    part = inversion.sample_ddim(step_model, trace[3].clone(), part_sig)
    torch.testing.assert_close(part, full, rtol=0, atol=0)
    own = masked_cfg.guided_denoiser(lambda g, s, b: (cond, uncond)[b](g, s), part_sig, **opts)
    assert not torch.allclose(inversion.sample_ddim(own, trace[3].clone(), part_sig), full, atol=1e-4)


def test_guidance_schedule_on_the_full_schedule():
    assert [masked_cfg.guidance_active(i, 10, 0.0) for i in range(3)] == [False, True, True]
    # the last 4 of 10 steps: step 0 of the run is step 6 of the schedule
    assert [masked_cfg.guidance_active(i, 4, 0.65, schedule_steps=10) for i in range(4)] == [False, True, True, True]


def test_background_branch_drives_the_outside(table, branches):
    cond, uncond, background = branches
    x = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(9)) * schedule.vp_scale(table[667])
    sig = schedule.ddim_sampling_sigmas(table, 3)

    def run(mask, with_background, grid_size=1):
        model = masked_cfg.guided_denoiser(lambda g, s, b: branches[b](g, s), sig, cfg=7.5, mask=mask,
                                           cfg_start=-1.0, grid_size=grid_size, shuffle=True, seed=2,
                                           background=with_background)
        return inversion.sample_ddim(model, x.clone(), sig)

    zeros, ones = torch.zeros(4, 8, 8), torch.ones(4, 8, 8)
    background_only = inversion.sample_ddim(background, x.clone(), sig)
    torch.testing.assert_close(run(zeros, True), background_only, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(run(zeros, False), inversion.sample_ddim(uncond, x.clone(), sig), rtol=1e-5, atol=1e-5)
    assert torch.equal(run(ones, True, 2), run(ones, False, 2))    # nothing is outside an all-ones mask
    # at unguided steps the inside is uncond and the outside still the background prompt
    half = torch.zeros(4, 8, 8)
    half[:, :, :4] = 1.0
    first = masked_cfg.guided_denoiser(lambda g, s, b: branches[b](g, s), sig, cfg=7.5, mask=half, cfg_start=0.0,
                                       background=True)(x, sig[0].expand(4))
    expected = masked_cfg.masked_cfg_blend(uncond(x, sig[0].expand(4)), background(x, sig[0].expand(4)), half)
    torch.testing.assert_close(first, expected, rtol=1e-6, atol=1e-6)


def test_inversion_record_check_names_both_numbers_and_the_fix():
    record = schedule.inversion_record(30, 1.0, 14.61, "easyinv")
    schedule.check_inversion_record(record, 30, 1.0, 14.61)
    schedule.check_inversion_record(None, 50, 0.3, 1.0)             # no record: the sampler's settings are trusted
    with pytest.raises(ValueError, match=r"inverted with 30 steps but the sampler is set to 50; set the sampler's "
                                         r"steps to 30"):
        schedule.check_inversion_record(record, 50, 1.0, 14.61)
    with pytest.raises(ValueError, match=r"denoise 1 but the sampler is set to denoise 0.5; set the sampler's "
                                         r"denoise to 1"):
        schedule.check_inversion_record(record, 30, 0.5, 14.61)
    with pytest.raises(ValueError, match="different noise schedules"):
        schedule.check_inversion_record(record, 30, 1.0, 12.0)


def test_easyinv_sdxl_settings_only_replace_untouched_defaults():
    assert inversion.easyinv_settings(0.5, 0.05, 0.2, sdxl=True) == inversion.EASYINV_SDXL == (0.8, 0.85, 0.1)
    assert inversion.easyinv_settings(0.5, 0.05, 0.2, sdxl=False) == (0.5, 0.05, 0.2)
    assert inversion.easyinv_settings(0.6, 0.05, 0.2, sdxl=True) == (0.6, 0.05, 0.2)
    assert inversion.easyinv_settings(0.5, 0.05, 0.25, sdxl=True) == (0.5, 0.05, 0.25)
