"""Edit-quality metrics on tiny synthetic clips, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from drive_ops.evaluate import compare_strip, edit_report, metrics, plots


def textured_clip(t: int, h: int, w: int, dx: int = 0, seed: int = 0) -> torch.Tensor:
    """A smooth random texture whose content moves ``dx`` px right per frame (wrapping)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 8, w // 8, generator=g)
    base = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0]
    base = base.clamp(0, 1).movedim(0, -1)
    return torch.stack([torch.roll(base, shifts=i * dx, dims=1) for i in range(t)])


def test_psnr_hand_values_and_region():
    a = torch.zeros(2, 4, 4, 3)
    b = a + 0.1  # MSE 0.01 -> 20 dB
    assert torch.allclose(metrics.psnr(a, b), torch.tensor([20.0, 20.0]))
    b[:, :2] = 0.0  # top half identical, bottom half off by 0.1
    top = torch.zeros(2, 4, 4, dtype=torch.bool)
    top[:, :2] = True
    assert torch.isinf(metrics.psnr(a, b, top)).all()
    assert torch.allclose(metrics.psnr(a, b, ~top), torch.tensor([20.0, 20.0]))
    assert torch.allclose(metrics.psnr(a, b), torch.full((2,), 10 * math.log10(1 / 0.005)))
    empty = torch.zeros(2, 4, 4, dtype=torch.bool)
    assert torch.isnan(metrics.psnr(a, b, empty)).all()


def test_ssim_of_constant_frames_is_the_luminance_term():
    a = torch.full((1, 9, 9, 3), 0.2)
    b = torch.full((1, 9, 9, 3), 0.6)
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)  # variances are 0: contrast term is C2/C2
    assert torch.allclose(metrics.ssim(a, b), torch.tensor([expected]), atol=1e-6)
    assert torch.allclose(metrics.ssim(a, a.clone()), torch.ones(1))
    assert not torch.isnan(metrics.ssim_map(a, b)).any()


def test_ssim_matches_an_explicit_window_computation():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(1, 9, 9, 3, generator=g)
    b = (a + 0.2 * torch.rand(1, 9, 9, 3, generator=g)).clamp(0, 1)
    smap = metrics.ssim_map(a, b)
    x = a[0, 1:8, 1:8].double().numpy()  # the 7x7 window centred on pixel (4, 4)
    y = b[0, 1:8, 1:8].double().numpy()
    per_channel = []
    for c in range(3):
        xc, yc = x[..., c].ravel(), y[..., c].ravel()
        vx, vy = np.var(xc, ddof=1), np.var(yc, ddof=1)
        cov = np.cov(xc, yc, ddof=1)[0, 1]
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        per_channel.append((2 * xc.mean() * yc.mean() + c1) * (2 * cov + c2)
                           / ((xc.mean() ** 2 + yc.mean() ** 2 + c1) * (vx + vy + c2)))
    assert smap[0, 4, 4].item() == pytest.approx(float(np.mean(per_channel)), abs=1e-5)
    # the reported value is the map's mean without the 3 px border, as skimage does
    assert metrics.ssim(a, b)[0].item() == pytest.approx(smap[0, 3:6, 3:6].mean().item(), abs=1e-6)


def test_background_ignores_the_edit_and_the_dilated_band():
    src = textured_clip(3, 32, 32)
    mask = torch.zeros(3, 32, 32)
    mask[:, 10:20, 10:20] = 1.0
    edited = src.clone()
    edited[:, 9:21, 9:21] = 0.0  # the edit spills 1 px past the mask
    tight = metrics.background_preservation(src, edited, mask, dilation_px=0)
    assert torch.isfinite(tight.psnr).all() and (tight.ssim < 1).all()
    grown = metrics.background_preservation(src, edited, mask, dilation_px=2)
    assert torch.isinf(grown.psnr).all()
    assert (grown.coverage < 1).all() and (grown.coverage > 0.5).all()
    assert src.equal(textured_clip(3, 32, 32)), "inputs must not be mutated"
    whole = metrics.background_preservation(src, src.clone(), None)
    assert torch.isinf(whole.psnr).all() and torch.allclose(whole.ssim, torch.ones(3))


def known_shift_flows(t: int, h: int, w: int, dx: float) -> metrics.SourceFlows:
    fw = torch.zeros(t - 1, h, w, 2)
    fw[..., 0] = dx
    return metrics.flows_from(fw, -fw)


def test_warp_error_is_zero_with_the_true_flow_and_large_without():
    clip = textured_clip(4, 32, 48, dx=3)
    err = metrics.warp_error(clip, known_shift_flows(4, 32, 48, 3.0))
    assert err.shape == (3,) and err.max() < 1e-10  # the wrapped-in columns are occluded, so excluded
    still = metrics.warp_error(clip, known_shift_flows(4, 32, 48, 0.0))
    assert still.min() > 1e-3


def test_occluded_pixels_are_excluded():
    clip = textured_clip(3, 16, 24, dx=2)
    flows = known_shift_flows(3, 16, 24, 2.0)
    assert flows.occluded[:, :, :2].all() and not flows.occluded[:, :, 2:].any()
    broken = clip.clone()
    broken[-1, :, :2] = 1.0 - broken[-1, :, :2]  # garbage only where the last frame has no source before it
    assert metrics.warp_error(broken, flows).max() < 1e-10
    flows.occluded[:] = False
    assert metrics.warp_error(broken, flows).min() > 1e-3


def test_dis_flow_on_the_source_follows_its_motion():
    src = textured_clip(3, 64, 96, dx=2)
    flows = metrics.source_flows(src)
    inner = flows.forward[:, 16:-16, 16:-16]
    assert torch.allclose(inner[..., 0].median(), torch.tensor(2.0), atol=0.3)
    assert metrics.warp_error(src, flows).max() < 2e-4
    g = torch.Generator().manual_seed(1)
    noisy = (src + 0.1 * torch.randn(src.shape, generator=g)).clamp(0, 1)
    assert metrics.warp_error(noisy, flows).min() > 20 * metrics.warp_error(src, flows).max()


def test_warp_ssim_follows_raves_recipe():
    still = textured_clip(3, 16, 16)
    flows = known_shift_flows(3, 16, 16, 0.0)
    assert torch.allclose(metrics.warp_ssim(still, flows), torch.ones(3))
    moving = textured_clip(3, 32, 32, dx=2)
    score = metrics.warp_ssim(moving, known_shift_flows(3, 32, 32, -2.0))
    assert score[0] == 1.0  # frame 0 is compared with itself, as RAVE averages it
    assert (score[1:] > 0.8).all()  # the forward flow used as backward: -2 px re-aligns this clip


def test_flicker_hand_values():
    src = torch.full((3, 8, 8, 3), 0.5)
    edited = src.clone()
    edited[1, 2:6, 2:6] = 0.6  # inside the object: +0.1 then -0.1
    mask = torch.zeros(3, 8, 8)
    mask[:, 2:6, 2:6] = 1.0
    fl = metrics.flicker(src, edited, mask, dilation_px=1)
    assert torch.allclose(fl.edited_inside, torch.tensor([0.1, 0.1]), atol=1e-6)
    assert torch.allclose(fl.source_inside, torch.zeros(2))
    assert torch.allclose(fl.edited_outside, torch.zeros(2))
    ratio = metrics.flicker_ratio(fl.edited_inside, fl.source_inside)
    assert torch.allclose(ratio, torch.full((2,), (0.1 + 1 / 255) / (1 / 255)), rtol=1e-5)
    assert metrics.flicker_ratio(torch.zeros(1), torch.zeros(1)).item() == 1.0


def test_reconstruction_sits_below_the_vae_bound():
    src = torch.full((2, 8, 8, 3), 0.5)
    rec = metrics.reconstruction(src, src + 0.01, src + 0.1)
    assert torch.allclose(rec.vae_psnr, torch.full((2,), 40.0), atol=1e-3)
    assert torch.allclose(rec.inversion_psnr, torch.full((2,), 20.0), atol=1e-3)
    assert torch.allclose(rec.gap_db, torch.full((2,), 20.0), atol=1e-3)


def test_clip_scores_are_cosines_times_100():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    text = torch.tensor([1.0, 1.0])
    assert torch.allclose(metrics.clip_text_scores(images, text), torch.full((3,), 100 / math.sqrt(2)))
    per_frame = metrics.clip_frame_scores(images)
    assert torch.allclose(per_frame, torch.tensor([50.0, 50.0, 0.0]))
    assert per_frame.mean().item() == pytest.approx(100 / 3)  # mean over the 6 ordered pairs i != j
    assert torch.allclose(metrics.clip_temporal_scores(images), torch.tensor([100.0, 0.0]))
    zero = torch.zeros(2, 2)
    assert not torch.isnan(metrics.clip_frame_scores(zero)).any()
    with pytest.raises(ValueError, match="same CLIP"):
        metrics.clip_text_scores(images, torch.ones(3))


def test_mismatched_clips_name_the_fix():
    with pytest.raises(ValueError, match="frames"):
        metrics.psnr(torch.zeros(3, 8, 8, 3), torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match="resize or crop"):
        metrics.psnr(torch.zeros(3, 8, 8, 3), torch.zeros(3, 8, 16, 3))


def test_identical_constant_clips_report_perfect_scores_without_nans():
    clip = torch.full((3, 16, 16, 3), 0.25)
    mask = torch.zeros(3, 16, 16)
    mask[:, 4:8, 4:8] = 1.0
    report = edit_report.build_report(clip, clip.clone(), mask, dilation_px=2)
    assert math.isinf(report.bg_psnr) and report.bg_ssim == 1.0
    assert report.mean_warp_error == 0.0 and report.mean_warp_ssim == 100.0
    assert report.flicker_ratio == 1.0 and report.flicker_ratio_outside == 1.0
    assert report.clip_text == edit_report.CLIP_ABSENT and report.clip_frame == edit_report.CLIP_ABSENT
    for value in (report.bg_ssim, report.mean_warp_error, report.mean_warp_ssim, report.flicker_ratio):
        assert not math.isnan(value)
    text = edit_report.summary_text(report)
    assert "nan" not in text.lower() and "CLIP" not in text


def test_report_with_embeddings_and_an_empty_mask():
    src = textured_clip(3, 24, 24, dx=1)
    edited = (src * 0.9).clamp(0, 1)
    embeds = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0]])
    ticks = []
    report = edit_report.build_report(src, edited, torch.zeros(3, 24, 24), 2, embeds, torch.tensor([1.0, 0.0]),
                                      progress=lambda done, total: ticks.append((done, total)))
    assert ticks[-1][0] == ticks[-1][1] and all(a[0] <= b[0] for a, b in zip(ticks, ticks[1:]))
    assert not report.object_seen and not math.isnan(report.flicker_ratio)  # falls back to the whole frame
    assert 0 < report.clip_text <= 100 and 0 < report.clip_frame <= 100
    assert "CLIP-T" in edit_report.summary_text(report)
    with pytest.raises(ValueError, match="covers every pixel"):
        edit_report.build_report(src, edited, torch.ones(3, 24, 24), 2)
    with pytest.raises(ValueError, match="at least 2 frames"):
        edit_report.build_report(src[:1], edited[:1])


def test_plot_is_an_image_tensor():
    src = textured_clip(3, 24, 24, dx=1)
    report = edit_report.build_report(src, src.clone(), None, 2, torch.eye(3))
    img = plots.plot_report(report, width=600, height=400)
    assert img.shape == (1, 400, 600, 3) and img.dtype == torch.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05


def test_compare_strip_layout():
    src = torch.zeros(5, 6, 8, 3)
    edited = torch.ones(5, 6, 8, 3)
    mask = torch.ones(5, 6, 8)
    frames = compare_strip.parse_frame_indices("0, -1", 5)
    assert frames == [0, 4]
    sheet = compare_strip.compare_strip(src, edited, mask, frames, gap_px=2)
    assert sheet.shape == (1, 2 * 6 + 2, 3 * 8 + 2 * 2, 3)
    assert sheet[0, 0, 0].tolist() == [0.0, 0.0, 0.0] and sheet[0, 0, 10].tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(sheet[0, 0, 20], torch.tensor([0.5, 0.1, 0.1]))  # red tint at 50 % over black
    assert compare_strip.compare_strip(src, edited, None, [1]).shape == (1, 6, 2 * 8 + 4, 3)
    assert compare_strip.parse_frame_indices("", 10) == [0, 3, 6, 9]
    assert compare_strip.parse_frame_indices("", 1) == [0]
    with pytest.raises(ValueError, match="0..4"):
        compare_strip.parse_frame_indices("7", 5)
    with pytest.raises(ValueError, match="whole number"):
        compare_strip.parse_frame_indices("a", 5)
