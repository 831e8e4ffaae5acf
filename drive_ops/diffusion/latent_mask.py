"""A latent mask shaped to broadcast over image latents ``[T,C,h,w]`` or video latents ``[B,C,T',h,w]``."""

from __future__ import annotations

import torch


def broadcast_latent_mask(mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """A latent mask shaped to broadcast over ``latents``, in their dtype and device.

    Image latents ``[T,C,h,w]`` take a mask ``[T,h,w]`` as ``[T,1,h,w]``; video latents
    ``[B,C,T',h,w]`` take ``[T',h,w]`` as ``[1,1,T',h,w]`` (every batch item and channel).
    Raises ValueError when the mask's frames or size do not match the latents'.
    """
    video = latents.dim() == 5
    frames = latents.shape[2] if video else latents.shape[0]
    if mask.dim() != 3 or mask.shape[0] != frames or tuple(mask.shape[-2:]) != tuple(latents.shape[-2:]):
        raise ValueError(f"the latent mask {tuple(mask.shape)} does not match the latents {tuple(latents.shape)}; it "
                         "needs one frame per latent frame at latent size")
    m = mask.to(device=latents.device, dtype=latents.dtype)
    return m[None, None] if video else m.unsqueeze(1)
