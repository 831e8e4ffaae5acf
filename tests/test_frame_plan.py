import pytest
import torch

from drive_ops.core.frame_plan import apply_frame_plan, center_crop_span, plan_frame_size


def comfy_vae_crop(pixels: torch.Tensor, m: int = 8) -> torch.Tensor:
    """ComfyUI's vae_encode_crop_pixels rule, restated for the parity check."""
    for d, size in enumerate(pixels.shape[1:3]):
        length = size // m * m
        pixels = pixels.narrow(d + 1, (size % m) // 2, length)
    return pixels


@pytest.mark.parametrize("h,w", [(64, 64), (67, 93), (71, 8), (1080, 1917)])
def test_crop_matches_comfy_vae_crop(h, w):
    frames = torch.rand(2, h, w, 3)
    plan = plan_frame_size(h, w, "crop_to_multiple_of_8")
    out = apply_frame_plan(frames, plan)
    assert torch.equal(out, comfy_vae_crop(frames))
    assert out.shape[1] % 8 == 0 and out.shape[2] % 8 == 0


def test_keep_is_identity():
    frames = torch.rand(3, 37, 51, 3)
    plan = plan_frame_size(37, 51, "keep")
    assert plan.is_identity
    assert torch.equal(apply_frame_plan(frames, plan), frames)


@pytest.mark.parametrize("h,w,side,expected", [(1080, 1920, 512, (288, 512)), (1920, 1080, 512, (512, 288)),
                                                (481, 853, 512, (288, 512)), (100, 100, 64, (64, 64))])
def test_fit_longer_side(h, w, side, expected):
    plan = plan_frame_size(h, w, "fit_longer_side", longer_side=side)
    assert (plan.out_h, plan.out_w) == expected
    out = apply_frame_plan(torch.rand(1, h, w, 3), plan)
    assert tuple(out.shape) == (1, *expected, 3)
    assert out.min() >= 0 and out.max() <= 1


def test_mask_and_image_share_the_plan():
    """A mask drawn on the source lands on the same pixels as the frame after the plan."""
    h, w = 90, 130
    frames = torch.zeros(1, h, w, 3)
    mask = torch.zeros(1, h, w)
    frames[:, 20:60, 30:90] = 1.0
    mask[:, 20:60, 30:90] = 1.0
    plan = plan_frame_size(h, w, "fit_longer_side", longer_side=64)
    img = apply_frame_plan(frames, plan, mode="nearest")
    msk = apply_frame_plan(mask, plan, mode="nearest")
    assert torch.equal(img[..., 0], msk)


def test_crop_span_and_errors():
    assert center_crop_span(67) == (1, 64)
    with pytest.raises(ValueError, match="smaller than 8"):
        plan_frame_size(5, 64, "crop_to_multiple_of_8")
    with pytest.raises(ValueError, match="unknown size policy"):
        plan_frame_size(64, 64, "stretch")
    with pytest.raises(ValueError, match="do not match"):
        apply_frame_plan(torch.rand(1, 10, 10, 3), plan_frame_size(12, 12))
