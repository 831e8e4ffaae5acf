"""Tune-A-Video's temporal attention: every spatial token attends over the clip's frames.

Tune-A-Video (Wu et al., "Tune-A-Video: One-Shot Tuning of Image Diffusion Models for
Text-to-Video Generation", ICCV 2023) adds one new attention layer after the feed-forward
of every transformer block of an image UNet: the block's output ``[B*F, N, C]`` is read as
``N`` sequences of ``F`` frames, each sequence goes through pre-norm multi-head
self-attention, and the result is added back (docs/algorithms.md, Tune-A-Video). The UNet
batch holds ``chunks`` CFG branches (cond / uncond) of ``F`` frames each, in frame order,
and frames only ever attend to frames of their own branch.

The output projection starts at zero (weight and bias), so a fresh layer adds exactly
zero: the tuned model starts as the image model. Upstream zeroes only the weight and
keeps the default random bias, a constant offset at initialisation; this layer is exactly
the identity until it is trained. There is no positional encoding (as upstream), so the
layer is equivariant to a permutation of the frames.

Weights are cast to the input's device and dtype at use, so the layer runs wherever the
UNet runs, whatever precision the model computes in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TRAINED_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out")
"""The projections Tune-A-Video trains; the pre-norm keeps its initial scale 1 and shift 0."""


def frame_sequences(tokens: torch.Tensor, chunks: int) -> torch.Tensor:
    """[chunks*F, N, C] (each branch F frames in order) -> [chunks*N, F, C]: one sequence per token and branch."""
    b, n, c = tokens.shape
    if chunks < 1 or b % chunks:
        raise ValueError(f"a batch of {b} cannot be split into {chunks} CFG branches of equal size")
    frames = b // chunks
    return tokens.reshape(chunks, frames, n, c).transpose(1, 2).reshape(chunks * n, frames, c)


def from_frame_sequences(sequences: torch.Tensor, chunks: int) -> torch.Tensor:
    """[chunks*N, F, C] -> [chunks*F, N, C], the inverse of :func:`frame_sequences`."""
    bn, frames, c = sequences.shape
    if chunks < 1 or bn % chunks:
        raise ValueError(f"{bn} sequences cannot be split into {chunks} CFG branches of equal size")
    n = bn // chunks
    return sequences.reshape(chunks, n, frames, c).transpose(1, 2).reshape(chunks * frames, n, c)


class TemporalAttention(nn.Module):
    """Pre-norm multi-head self-attention over frames with a residual, zero at initialisation.

    ``dim`` channels in and out, ``heads`` x ``dim_head`` inside (Tune-A-Video uses the
    block's own head layout). q/k/v have no bias, the output projection has one.
    ``generator`` seeds the q/k/v initialisation (PyTorch's default Linear init).
    """

    def __init__(self, dim: int, heads: int, dim_head: int, generator: torch.Generator | None = None):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        with torch.no_grad():
            for proj in (self.to_q, self.to_k, self.to_v):
                nn.init.kaiming_uniform_(proj.weight, a=math.sqrt(5), generator=generator)
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def trained_parameters(self) -> list[nn.Parameter]:
        """The parameters Tune-A-Video trains (q, k, v and output projections; not the norm)."""
        return [p for name in TRAINED_PROJECTIONS for p in getattr(self, name).parameters()]

    def forward(self, tokens: torch.Tensor, chunks: int = 1) -> torch.Tensor:
        """tokens [chunks*F, N, C] -> tokens + attention over F, same shape and dtype."""
        seq = frame_sequences(tokens, chunks)
        cast = {"device": tokens.device, "dtype": tokens.dtype}
        h = F.layer_norm(seq, self.norm.normalized_shape, self.norm.weight.to(**cast), self.norm.bias.to(**cast),
                         self.norm.eps)
        bn, frames, _ = h.shape

        def heads(proj: nn.Linear) -> torch.Tensor:
            out = F.linear(h, proj.weight.to(**cast))
            return out.reshape(bn, frames, self.heads, -1).transpose(1, 2)

        attended = F.scaled_dot_product_attention(heads(self.to_q), heads(self.to_k), heads(self.to_v))
        attended = attended.transpose(1, 2).reshape(bn, frames, -1)
        out = F.linear(attended, self.to_out.weight.to(**cast), self.to_out.bias.to(**cast))
        return from_frame_sequences(seq + out, chunks)


def parameter_count(layers: dict[str, TemporalAttention]) -> int:
    """Trained parameters of a set of temporal layers."""
    return sum(p.numel() for layer in layers.values() for p in layer.trained_parameters())
