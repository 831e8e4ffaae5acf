"""A pixel mask reduced to a video model's latent: time (the VAE's temporal stride) and space, covering the object.

Video VAEs of the Wan class are causal in time: with temporal stride ``s`` a clip of
``T = s*(T'-1) + 1`` frames encodes to ``T'`` latent frames; latent frame 0 is pixel frame 0
and latent frame ``k >= 1`` covers pixel frames ``s*k - s + 1 .. s*k`` (Wan: stride 4, 8x8
pixels per cell). The mask the masked edit gates with must hold the object in every latent
cell any of its pixels touches, so the reduction is a maximum in time (over a latent frame's
pixel frames) and any coverage in space (over a cell's pixel block): no object pixel is
left outside the latent mask.
"""

from __future__ import annotations

import torch

from .masked_cfg import mask_to_latent


def pixel_frame_count(latent_frames: int, stride: int) -> int:
    """Pixel frames ``stride*(T'-1) + 1`` a causal video VAE encodes to ``latent_frames`` latent frames."""
    return stride * (latent_frames - 1) + 1


def latent_frame_groups(latent_frames: int, stride: int) -> list[range]:
    """The pixel frames each latent frame covers: ``[0]``, then ``stride*k - stride + 1 .. stride*k``."""
    return [range(0, 1)] + [range(stride * k - stride + 1, stride * k + 1) for k in range(1, latent_frames)]


def reduce_in_time(mask: torch.Tensor, latent_frames: int, stride: int) -> torch.Tensor:
    """Pixel mask ``[T,H,W]`` -> ``[T',H,W]``: each latent frame's maximum over the pixel frames it covers.

    ``T`` must be ``stride*(T'-1) + 1`` (or 1: one frame for the whole clip). Raises the
    ValueError that names the fix for any other frame count.
    """
    if mask.dim() != 3:
        raise ValueError(f"expected a mask [T,H,W], got shape {tuple(mask.shape)}")
    frames = mask.shape[0]
    if frames == 1:
        return mask.expand(latent_frames, -1, -1)
    expected = pixel_frame_count(latent_frames, stride)
    if frames != expected:
        raise ValueError(f"the mask has {frames} frames but the video latent has {latent_frames} latent frames, "
                         f"which a video VAE with temporal stride {stride} encodes from {expected} frames "
                         f"({stride}n+1); give the mask of the frames that were VAE-encoded (trim video and mask "
                         f"to {expected} frames, e.g. the first {expected}), or a single mask frame for every frame")
    return torch.stack([mask[group.start:group.stop].amax(dim=0) for group in latent_frame_groups(latent_frames,
                                                                                                    stride)])


def video_mask_to_latent(mask: torch.Tensor, latent_frames: int, latent_h: int, latent_w: int, stride: int,
                         factor: int, threshold: float = 0.5) -> torch.Tensor:
    """Pixel mask ``[T,H,W]`` -> binary latent mask ``[T',h,w]`` (float 0/1) covering every object pixel.

    A pixel is the object where it exceeds ``threshold``; a latent cell is inside when any
    object pixel lies in its pixel frames (:func:`reduce_in_time`) and its ``factor x factor``
    block (after the VAE's centred crop to a multiple of ``factor``, as ``mask_to_latent``).
    """
    binary = (mask.float() > threshold).float()
    return mask_to_latent(reduce_in_time(binary, latent_frames, stride), latent_h, latent_w, "area", 0.0, factor)
