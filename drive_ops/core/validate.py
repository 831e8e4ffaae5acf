"""Checks at the pipeline's boundaries: finite tensors, masks in 0..1, numbers that are numbers.

A few NaN pixels (an fp16 VAE overflowing is the classic source) spread through every
blur, blend and statistic downstream, and a video writer turns them into black or white
pixels without a word; so every node checks its IMAGE, LATENT and MASK inputs once and
refuses with the likely cause. The check is one ``aminmax`` reduction: the minimum and
maximum are finite exactly when every value is (NaN propagates through min and max,
and an infinity is an extreme), it reads the tensor once in its own dtype and allocates
two numbers. Only a failing tensor is looked at frame by frame.
"""

from __future__ import annotations

import math

import torch

IMAGE_HINT = ("Non-finite pixels usually come from a VAE decoding in fp16, which overflows: start ComfyUI with "
              "--fp32-vae (or --bf16-vae), or find the node upstream that produced them.")
LATENT_HINT = ("Non-finite latents usually come from a VAE encoding in fp16, which overflows (start ComfyUI with "
               "--fp32-vae or --bf16-vae), or from a sampler run that diverged; check the node upstream that "
               "produced them.")
MASK_HINT = "Check the node upstream that produced the mask (a mask made from non-finite pixels stays non-finite)."
ALIGN_HINT = ("if the edit comes from another model at its own frame count or size (Wan VACE's 81-frame 720x720 "
              "segments, a window of the clip, an upscale), map it onto the source's frames and size with Align "
              "Edited Clip (DRIVE) first")


class NonFiniteError(ValueError):
    """A tensor input holds NaN or infinite values; the message counts them and names the likely cause."""


def non_finite_frames(x: torch.Tensor) -> list[int]:
    """Indices along dim 0 of ``x`` ``[T,...]`` whose values include a NaN or an infinity."""
    if not x.is_floating_point() or x.numel() == 0:
        return []
    if x.dim() < 2:
        x = x.reshape(1, -1)
    low, high = torch.aminmax(x)
    if bool(torch.isfinite(low) & torch.isfinite(high)):
        return []
    dims = tuple(range(1, x.dim()))
    finite = torch.isfinite(x.amin(dim=dims)) & torch.isfinite(x.amax(dim=dims))
    return [int(t) for t in torch.nonzero(~finite).flatten()]


def check_finite(x: torch.Tensor, what: str, hint: str = IMAGE_HINT) -> None:
    """Raise NonFiniteError, counting NaN / +inf / -inf and naming the frames, unless ``x`` is all finite.

    ``what`` names the input ("the images input"); ``hint`` says the likely cause and fix.
    """
    bad = non_finite_frames(x)
    if not bad:
        return
    frames = x.reshape(1, -1) if x.dim() < 2 else x
    rows = frames[bad]
    counts = {"NaN": int(torch.isnan(rows).sum()), "+inf": int(torch.isposinf(rows).sum()),
              "-inf": int(torch.isneginf(rows).sum())}
    found = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    listed = ", ".join(str(t) for t in bad[:8]) + (", ..." if len(bad) > 8 else "")
    raise NonFiniteError(f"{what} holds non-finite values ({found}) in {len(bad)} of {frames.shape[0]} frames "
                         f"(frame {listed}). {hint}")


def check_image(x: torch.Tensor, what: str = "the images input") -> None:
    """An IMAGE ``[T,H,W,C]`` with at least one frame and pixel, all finite."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or 0 in x.shape:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be an IMAGE batch [frames, height, width, channels] with at least one "
                         f"frame; got {shape}. Connect the output of an image or video loader.")
    check_finite(x, what, IMAGE_HINT)


def check_mask(x: torch.Tensor, what: str = "the mask input") -> None:
    """A MASK ``[T,H,W]`` or ``[H,W]`` (or ``[T,H,W,1]``), non-empty and all finite."""
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3, 4) or (x.dim() == 4 and x.shape[-1] != 1) \
            or 0 in x.shape:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a MASK [frames, height, width] or [height, width]; got {shape}")
    check_finite(x, what, MASK_HINT)


def check_latent(latent: dict, what: str = "the latent input") -> torch.Tensor:
    """A LATENT dict whose ``samples`` ``[T,C,h,w]`` (or 5-D) are all finite; returns the samples."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.dim() not in (4, 5) or 0 in samples.shape:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"{what} must be a LATENT with samples [frames, channels, height/8, width/8]; got {shape}. "
                         "Connect VAE Encode (or Invert Video) here.")
    check_finite(samples, what, LATENT_HINT)
    return samples


def unit_range_mask(mask: torch.Tensor, what: str = "the mask") -> tuple[torch.Tensor, str | None]:
    """``mask`` clamped to 0..1, and a note when it had values outside (None when it was already in range).

    A mask of 3.0 would extrapolate a blend ``a*M + b*(1-M)`` far past both images;
    masks added together (overlapping MaskComposite "add") are the usual source.
    """
    low, high = (float(v) for v in torch.aminmax(mask.float()))
    if low >= 0.0 and high <= 1.0:
        return mask, None
    note = (f"{what} has values from {low:g} to {high:g}, outside 0..1; they were clamped to 0..1 "
            "(masks added together overlap above 1: clamp them upstream to silence this note)")
    return mask.clamp(0.0, 1.0), note


def check_numbers(**values: float) -> None:
    """Raise ValueError naming the first of ``values`` that is NaN or infinite.

    ComfyUI checks widget values against their min/max, but ``NaN`` compares false with
    both and passes: its HTTP API accepts NaN in the prompt JSON, the widgets never send it.
    """
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} is {value}: give a finite number (the prompt sent through the API "
                             "holds NaN or Infinity, which the widgets never send)")
