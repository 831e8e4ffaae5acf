"""Builders for the testbed's three networks, with their configs as constants.

- autoencoder: diffusers ``AutoencoderKL``, 4 levels (8x down), 4 latent channels,
  channels (32, 32, 64, 64), GroupNorm(32) everywhere, mid-block attention: the layout of
  SD's VAE at a fraction of the width, so ComfyUI's own ``comfy.sd.VAE`` can hold it.
- text encoder: :class:`TextEncoder`, token + position embeddings and two pre-norm
  transformer layers over the closed vocabulary; context ``[B, 16, 128]`` for the UNet's
  cross-attention and a pooled vector (the ``<eos>`` position) for ComfyUI's ``pooled_output``.
- UNet: diffusers ``UNet2DConditionModel``, channels (64, 128, 128), one res-block per level,
  a transformer (self-attention ``attn1`` + cross-attention ``attn2``) after every res-block
  in all down, mid and up blocks, 4 heads, cross-attention dim 128. :data:`COMFY_UNET_CONFIG`
  is the same structure as a ComfyUI ``UNetModel`` config.

Eps-prediction on SD1.5's schedule (scaled-linear betas 0.00085..0.012, 1000 steps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import vocab

SD_LATENT_SCALE = 0.18215
"""ComfyUI's SD15 latent format: the UNet sees ``raw_latent * SD_LATENT_SCALE``."""

BETA_START, BETA_END, TRAIN_STEPS = 0.00085, 0.012, 1000

AE_CONFIG = dict(
    in_channels=3, out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(32, 32, 64, 64), layers_per_block=1, latent_channels=4,
    norm_num_groups=32, sample_size=64, scaling_factor=SD_LATENT_SCALE,
)

TEXT_CONFIG = dict(vocab_size=len(vocab.VOCAB), max_tokens=vocab.MAX_TOKENS, width=128, layers=2, heads=4,
                   mlp_ratio=4)

UNET_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(64, 128, 128),
    down_block_types=("CrossAttnDownBlock2D",) * 3, up_block_types=("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=TEXT_CONFIG["width"], attention_head_dim=4,  # diffusers' legacy name: 4 heads per layer
    norm_num_groups=32,
)

COMFY_UNET_CONFIG = dict(
    image_size=8, in_channels=4, out_channels=4, model_channels=64, channel_mult=[1, 2, 2], num_res_blocks=1,
    transformer_depth=[1, 1, 1], transformer_depth_output=[1, 1, 1, 1, 1, 1], transformer_depth_middle=1,
    context_dim=TEXT_CONFIG["width"], num_heads=4, num_head_channels=-1, use_spatial_transformer=True,
    legacy=False, use_linear_in_transformer=False, adm_in_channels=None,
    use_temporal_attention=False, use_temporal_resblock=False,
)
"""ComfyUI's ``UNetModel`` config of :data:`UNET_CONFIG` (conversion via ``comfy.utils.unet_to_diffusers``)."""


def build_autoencoder():
    from diffusers import AutoencoderKL

    return AutoencoderKL(**AE_CONFIG)


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**UNET_CONFIG)


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, mlp_ratio * width)
        self.fc2 = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1) @ v
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TextEncoder(nn.Module):
    """Tokens ``[B, L]`` -> (context ``[B, L, width]``, pooled ``[B, width]`` at ``<eos>``); bidirectional attention."""

    def __init__(self, vocab_size: int, max_tokens: int, width: int, layers: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.token = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.zeros(max_tokens, width))
        self.blocks = nn.ModuleList(_Block(width, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.token(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), vocab.eos_positions(tokens)]
        return x, pooled


def build_text_encoder() -> TextEncoder:
    return TextEncoder(**TEXT_CONFIG)


def alphas_cumprod() -> torch.Tensor:
    """SD1.5's ``alphas_cumprod`` [1000] (scaled-linear betas), float32, as ``drive_ops.diffusion.schedule`` builds it."""
    from drive_ops.diffusion import schedule

    return schedule.scaled_linear_alphas_cumprod(BETA_START, BETA_END, TRAIN_STEPS)


@torch.no_grad()
def fold_latent_scale(ae, factor: float) -> None:
    """Scale the autoencoder's raw latent by ``factor`` without changing what it decodes.

    The posterior mean (first ``latent_channels`` outputs of ``quant_conv``) is multiplied by
    ``factor``, its log-variance shifted by ``2 log factor``, and ``post_quant_conv`` divides
    its input by ``factor``.
    """
    c = ae.config.latent_channels
    ae.quant_conv.weight[:c] *= factor
    ae.quant_conv.bias[:c] *= factor
    ae.quant_conv.bias[c:] += 2.0 * math.log(factor)
    ae.post_quant_conv.weight *= 1.0 / factor


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
