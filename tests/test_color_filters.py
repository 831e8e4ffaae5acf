"""The six Harmonizer filters: identity at 0, monotone in their argument, range kept."""

from __future__ import annotations

import pytest
import torch

from drive_ops.composite.color_filters import FILTER_NAMES, FILTERS, apply_filters


def _image(seed: int = 0, size: tuple[int, int] = (24, 32)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(2, 3, *size, generator=gen) * 0.8 + 0.1      # away from the clamps
    return base


@pytest.mark.parametrize("name,filt", list(zip(FILTER_NAMES, FILTERS)))
def test_identity_at_zero(name, filt):
    img = _image()
    out = filt(img, torch.zeros(2))
    torch.testing.assert_close(out, img, atol=2e-5, rtol=0)


def _statistic(name: str, img: torch.Tensor) -> torch.Tensor:
    """The quantity each filter is meant to raise as its argument grows (per image)."""
    if name == "temperature":                   # warmer: more red relative to blue
        means = img.mean(dim=(2, 3))
        return means[:, 0] - means[:, 2]
    if name == "contrast":
        return img.std(dim=(1, 2, 3))
    if name == "saturation":
        return (img.amax(dim=1) - img.amin(dim=1)).mean(dim=(1, 2))
    return img.mean(dim=(1, 2, 3))              # brightness, highlight, shadow: overall lighter


@pytest.mark.parametrize("name,filt", list(zip(FILTER_NAMES, FILTERS)))
def test_monotone_in_argument(name, filt):
    img = _image(1)
    values = [_statistic(name, filt(img, torch.full((2,), x))) for x in torch.linspace(-0.9, 0.9, 7)]
    stacked = torch.stack(values)               # [7, B]
    assert (stacked[1:] > stacked[:-1]).all(), f"{name} is not increasing: {stacked[:, 0].tolist()}"


@pytest.mark.parametrize("name,filt", list(zip(FILTER_NAMES, FILTERS)))
def test_output_stays_in_unit_range(name, filt):
    gen = torch.Generator().manual_seed(2)
    img = torch.rand(2, 3, 16, 16, generator=gen)
    img[:, :, :2] = 0.0
    img[:, :, -2:] = 1.0
    for x in (-1.0, -0.5, 0.5, 1.0):
        out = filt(img, torch.full((2,), x))
        assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()


def test_apply_filters_touches_only_the_mask_and_clamps_arguments():
    img = _image(3)
    mask = torch.zeros(2, 1, 24, 32)
    mask[:, :, 6:18, 8:24] = 1.0
    args = torch.tensor([[0.4, -0.3, 0.5, 0.2, -0.4, 0.3], [3.0, 2.0, -5.0, 1.5, 4.0, -2.0]])
    out = apply_filters(img, mask, args)
    assert torch.equal(out[mask.expand_as(out) == 0], img[mask.expand_as(img) == 0])
    assert not torch.allclose(out[:, :, 6:18, 8:24], img[:, :, 6:18, 8:24])
    torch.testing.assert_close(out[1:], apply_filters(img[1:], mask[1:], args[1:].clamp(-1, 1)))


def test_filters_are_differentiable():
    img = _image(4).requires_grad_(True)
    args = torch.full((2, 6), 0.3, requires_grad=True)
    apply_filters(img, None, args).sum().backward()
    assert torch.isfinite(args.grad).all() and args.grad.abs().sum() > 0


def test_parity_with_upstream_filters(shared_data):
    from safetensors.torch import load_file

    io = load_file(str(shared_data / "harmonizer_parity_io.safetensors"))
    out = apply_filters(io["comp"], io["mask"], io["fixed_arguments"])
    torch.testing.assert_close(out, io["restored_fixed"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("x", [-0.8, -0.3, 0.0, 0.4, 0.9])
def test_brightness_equals_scaling_hsv_value(x):
    """Our RGB scaling is the HSV-value scaling Harmonizer defines (kornia round trip)."""
    from kornia.color import hsv_to_rgb, rgb_to_hsv

    from drive_ops.composite.color_filters import EPS, brightness

    img = _image(5)
    img[:, :, :3] = 0.0                                               # black rows: hue/saturation undefined
    alpha = 1.0 / (1.0 - x + EPS) if x >= 0 else 1.0 + x
    h, s, v = rgb_to_hsv(img).unbind(dim=1)
    reference = hsv_to_rgb(torch.stack([h, s, v * alpha], dim=1)).clamp(0, 1)
    torch.testing.assert_close(brightness(img, torch.full((2,), x)), reference, atol=5e-6, rtol=0)
