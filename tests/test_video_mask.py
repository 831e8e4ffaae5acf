"""The pixel mask reduced to a video model's latent [T',h,w] (Wan: 4 frames and 8x8 pixels per cell), its
broadcast over video latents, and the masked blend / masked flow edit on 5-D latents."""

import pytest
import torch

from drive_ops.diffusion import flow
from drive_ops.diffusion.inversion import sample_ddim
from drive_ops.diffusion.latent_mask import broadcast_latent_mask
from drive_ops.diffusion.masked_cfg import masked_cfg_blend
from drive_ops.diffusion.video_mask import (latent_frame_groups, pixel_frame_count, reduce_in_time,
                                            video_mask_to_latent)


def test_latent_frames_cover_frame_zero_then_four_frames_each():
    assert [list(g) for g in latent_frame_groups(4, 4)] == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    assert [pixel_frame_count(n, 4) for n in (1, 3, 4, 21)] == [1, 9, 13, 81]
    assert [list(g) for g in latent_frame_groups(3, 1)] == [[0], [1], [2]]   # image latents: one frame each


def test_time_reduction_is_the_maximum_over_each_latent_frames_pixel_frames():
    mask = torch.zeros(9, 2, 2)
    mask[4, 0, 0] = 1.0    # last pixel frame of latent frame 1
    mask[5, 1, 1] = 0.3    # first pixel frame of latent frame 2
    out = reduce_in_time(mask, 3, 4)
    assert out.shape == (3, 2, 2)
    assert out[0].sum() == 0 and out[1, 0, 0] == 1.0 and out[2, 1, 1] == pytest.approx(0.3)
    assert out[1].sum() == 1.0 and out[2].sum() == pytest.approx(0.3)


@pytest.mark.parametrize("frames", [9, 13])
def test_every_object_pixel_lies_in_a_latent_cell_inside_the_reduced_mask(frames):
    gen = torch.Generator().manual_seed(frames)
    mask = (torch.rand(frames, 40, 48, generator=gen) > 0.995).float()   # scattered single pixels
    mask[frames // 2, 3:5, 7:30] = 0.8                                     # a thin bar, 2 px high
    latent_frames = (frames - 1) // 4 + 1
    out = video_mask_to_latent(mask, latent_frames, 5, 6, 4, 8)
    assert out.shape == (latent_frames, 5, 6) and set(out.unique().tolist()) <= {0.0, 1.0}
    t, y, x = torch.nonzero(mask > 0.5, as_tuple=True)
    cell_frame = torch.where(t == 0, 0, (t + 3) // 4)
    assert bool(out[cell_frame, y // 8, x // 8].all())
    # and nothing else: every cell inside holds an object pixel
    hits = torch.zeros_like(out)
    hits[cell_frame, y // 8, x // 8] = 1.0
    assert torch.equal(hits, out)


def test_the_threshold_decides_what_is_object_and_a_crop_follows_the_vae():
    mask = torch.zeros(5, 20, 20)       # 20 px -> centred crop to 16 px (offset 2), 2x2 cells of 8 px
    mask[2, 1, 1] = 1.0                 # cropped away by the VAE's centred crop
    mask[3, 10, 10] = 0.4               # below the threshold
    assert video_mask_to_latent(mask, 2, 2, 2, 4, 8).sum() == 0
    assert video_mask_to_latent(mask, 2, 2, 2, 4, 8, threshold=0.3)[1, 1, 1] == 1.0


def test_one_mask_frame_serves_every_latent_frame():
    mask = torch.zeros(1, 16, 16)
    mask[0, 0, 0] = 1.0
    out = video_mask_to_latent(mask, 4, 2, 2, 4, 8)
    assert out.shape == (4, 2, 2) and bool((out[:, 0, 0] == 1).all()) and out.sum() == 4


@pytest.mark.parametrize("frames", [8, 10, 3])
def test_other_frame_counts_are_refused_naming_the_4n_plus_1_fix(frames):
    with pytest.raises(ValueError, match=r"has %d frames.*3 latent frames.*9 frames \(4n\+1\).*trim video and mask "
                                         r"to 9 frames" % frames):
        video_mask_to_latent(torch.ones(frames, 16, 16), 3, 2, 2, 4, 8)


def test_a_mask_of_another_size_is_refused_naming_the_frames_size():
    with pytest.raises(ValueError, match="frames of about 16x16 px"):
        video_mask_to_latent(torch.ones(9, 32, 32), 3, 2, 2, 4, 8)


def test_latent_masks_broadcast_over_image_and_video_latents():
    mask = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])          # [3,1,2]
    assert broadcast_latent_mask(mask, torch.zeros(3, 4, 1, 2)).shape == (3, 1, 1, 2)
    video = broadcast_latent_mask(mask, torch.zeros(2, 16, 3, 1, 2, dtype=torch.float64))
    assert video.shape == (1, 1, 3, 1, 2) and video.dtype == torch.float64
    with pytest.raises(ValueError, match="one frame per latent frame at latent size"):
        broadcast_latent_mask(mask, torch.zeros(1, 16, 4, 1, 2))


def test_masked_blend_on_video_latents_is_the_formula():
    gen = torch.Generator().manual_seed(0)
    guided, uncond = torch.randn(1, 16, 3, 4, 4, generator=gen), torch.randn(1, 16, 3, 4, 4, generator=gen)
    mask = (torch.rand(3, 4, 4, generator=gen) > 0.5).float()
    out = masked_cfg_blend(guided, uncond, mask)
    m = mask[None, None].expand_as(guided).bool()
    assert torch.equal(out[m], guided[m]) and torch.equal(out[~m], uncond[~m])


@pytest.mark.parametrize("sampler, sigmas", [(flow.sample_fireflow, flow.with_midpoints(torch.linspace(1, 0, 5))),
                                             (sample_ddim, torch.linspace(1, 0, 5))], ids=["fireflow", "euler"])
def test_the_masked_flow_edit_pins_every_video_latent_outside_the_mask(sampler, sigmas):
    """A toy velocity that reads the whole clip (a temporal mean): outside the mask every model input and the
    result are the source trajectory exactly."""
    gen = torch.Generator().manual_seed(1)
    source, noise = torch.randn(1, 16, 3, 4, 4, generator=gen), torch.randn(1, 16, 3, 4, 4, generator=gen)
    mask = torch.zeros(3, 4, 4)
    mask[:, 1:3, 1:3] = 1.0
    keep = (mask == 0)[None, None].expand_as(source)
    seen = []

    def model(x, sigma, **_):
        seen.append((x.clone(), sigma.reshape(-1)[0]))
        return 0.5 * x + 0.3 * x.mean(dim=2, keepdim=True)

    start = flow.source_trajectory(source, noise, sigmas[0])
    out = flow.masked_sampler(sampler, source, mask)(model, start, sigmas)
    for x, sigma in seen:
        assert torch.equal(x[keep], flow.source_trajectory(source, noise, sigma)[keep])
    assert torch.equal(out[keep], source[keep]) and not torch.equal(out[~keep], source[~keep])
