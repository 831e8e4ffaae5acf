"""A tiny random-weight SD-shaped diffusers UNet for CPU tests (self-attention in encoder and decoder).

It builds in well under a second and one forward at 8x8 latents takes a few milliseconds.
"""

from __future__ import annotations

import torch


def tiny_unet(seed: int = 0):
    """UNet2DConditionModel: 4 latent channels, cross-attention dim 32, attention in down and up blocks."""
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng():  # weight init draws from the global RNG; keep it out of other tests
        torch.manual_seed(seed)
        return UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32).eval()


def self_attention_names(unet) -> list[str]:
    """Processor names of the UNet's self-attention (attn1) layers."""
    return [name for name in unet.attn_processors if ".attn1." in name]


def eps_denoiser(unet, sigma_table: torch.Tensor, context: torch.Tensor):
    """k-diffusion model of an eps-prediction diffusers UNet: ``model(x, sigma) -> denoised``.

    x is in ComfyUI's VE units: the UNet sees ``x / sqrt(1 + sigma^2)`` at the timestep of
    ``sigma`` and its eps gives ``x - sigma * eps``. ``context`` ``[1, L, D]`` is repeated per frame.
    """
    from drive_ops.diffusion import schedule

    def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
        t = schedule.timestep_from_sigma(sigma_table, sigma)
        with torch.no_grad():
            eps = unet(x / schedule.vp_scale(sigma).view(-1, 1, 1, 1), t,
                       encoder_hidden_states=context.expand(x.shape[0], -1, -1)).sample
        return x - sigma.view(-1, 1, 1, 1) * eps

    return model
