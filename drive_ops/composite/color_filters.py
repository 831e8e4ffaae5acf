"""Harmonizer's six white-box colour filters, written from their maths (docs/algorithms.md, Harmonizer).

Each filter maps an image ``[B,3,H,W]`` in 0..1 and one scalar argument per image
``[B]`` in -1..1 to an image in 0..1. They are differentiable and use statistics of
the *whole* image (background included), as Harmonizer does: the regressor was
trained with exactly these statistics, so changing them would change its meaning.
All six are the identity (up to their 1e-6 guards) at argument 0.
"""

from __future__ import annotations

import torch

FILTER_NAMES = ("temperature", "brightness", "contrast", "saturation", "highlight", "shadow")
EPS = 1e-6


def _per_image(arg: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Arguments ``[B]`` (or ``[B,1]``) -> ``[B,1,1,1]`` on the image's device and dtype."""
    return arg.reshape(-1, 1, 1, 1).to(device=img.device, dtype=img.dtype)


def temperature(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Grey-world white balance: x > 0 warms (damps blue), x < 0 cools (damps red).

    The per-channel means are shifted (R for x < 0, B for x > 0, G by half for any x)
    and each channel is rescaled so its mean follows the shifted grey point.
    """
    x = _per_image(arg, img)
    ax = x.abs()
    means = img.mean(dim=(2, 3), keepdim=True)                      # [B,3,1,1]
    gray = means.mean(dim=1, keepdim=True)
    offset = 1.0 - gray / (means + EPS)
    shift = torch.cat([ax * (x < 0), 0.5 * ax * (x != 0), ax * (x > 0)], dim=1)
    shifted = means + shift
    gray_shifted = shifted.mean(dim=1, keepdim=True)
    return (img * (gray_shifted / (shifted + EPS) + offset)).clamp(0, 1)


def brightness(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Scale HSV value by 1/(1-x) for x >= 0, by (1+x) for x < 0.

    HSV->RGB is linear in V for fixed hue and saturation, so scaling V is scaling
    RGB by the same factor: the same result as a kornia HSV round trip (to float32
    rounding, checked against the upstream oracle) at a fraction of the cost.
    """
    x = _per_image(arg, img)
    alpha = torch.where(x >= 0, 1.0 / (1.0 - x + EPS), 1.0 + x)
    return (img * alpha).clamp(0, 1)


def contrast(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Stretch (x > 0) or squeeze (x < 0) around the image's mean intensity."""
    x = _per_image(arg, img)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    gain = torch.where(x > 0, 255.0 / (256.0 - torch.floor(x * 255.0)) - 1.0, x)
    return (img + (img - mean) * gain).clamp(0, 1)


def saturation(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Push pixels away from (x > 0) or towards (x < 0) their HSL lightness."""
    x = _per_image(arg, img)
    cmax = img.amax(dim=1, keepdim=True)
    cmin = img.amin(dim=1, keepdim=True)
    spread = cmax - cmin
    total = cmax + cmin
    light = total / 2.0
    sat = spread / (torch.where(light < 0.5, total, 2.0 - total) + EPS)
    centred = img - light
    if bool((x >= 0).all()):                    # one branch only: the common, cheaper case
        return _saturate(img, centred, sat, x).clamp(0, 1)
    if bool((x < 0).all()):
        return (light + centred * (1.0 + x)).clamp(0, 1)
    return torch.where(x >= 0, _saturate(img, centred, sat, x), light + centred * (1.0 + x)).clamp(0, 1)


def _saturate(img: torch.Tensor, centred: torch.Tensor, sat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    alpha = 1.0 / (torch.where(x + sat > 1.0, sat, 1.0 - x) + EPS) - 1.0
    return img + centred * alpha


def highlight(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Gamma on the inverted image: x > 0 lifts the highlights, x < 0 darkens them."""
    x = _per_image(arg, img)
    return (1.0 - (1.0 - img + 1e-9).pow(x + 1.0).clamp(0, 1)).clamp(0, 1)


def shadow(img: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """Gamma on the image: x > 0 lifts the shadows, x < 0 deepens them."""
    x = _per_image(arg, img)
    return (img + 1e-9).pow(1.0 - x).clamp(0, 1)


FILTERS = (temperature, brightness, contrast, saturation, highlight, shadow)


def apply_filters(comp: torch.Tensor, mask: torch.Tensor | None, arguments: torch.Tensor) -> torch.Tensor:
    """Run the six filters in Harmonizer's order on ``comp`` and keep them inside ``mask``.

    comp ``[B,3,H,W]`` in 0..1; mask ``[B,1,H,W]`` in 0..1 (``None``: the whole frame);
    arguments ``[B,6]`` in the order of ``FILTER_NAMES``, clamped to -1..1 here.
    The filters chain on the whole image (their statistics include the background);
    only the final blend uses the mask: ``out = f(comp)*mask + comp*(1-mask)``.
    Returns ``[B,3,H,W]``.
    """
    if arguments.dim() != 2 or arguments.shape[1] != len(FILTERS) or arguments.shape[0] != comp.shape[0]:
        raise ValueError(f"arguments must be [B,{len(FILTERS)}] for {comp.shape[0]} images, "
                         f"got {tuple(arguments.shape)}")
    args = arguments.to(device=comp.device, dtype=comp.dtype).clamp(-1.0, 1.0)
    img = comp
    for i, filt in enumerate(FILTERS):
        img = filt(img, args[:, i])
    if mask is None:
        return img
    mask = mask.to(device=comp.device, dtype=comp.dtype)
    return img * mask + comp * (1.0 - mask)
