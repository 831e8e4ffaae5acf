"""Tune-A-Video's temporal layer: exact identity at init, attention over frames only within a CFG branch."""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion.temporal_attention import (TemporalAttention, frame_sequences, from_frame_sequences,
                                                    parameter_count)


def _trained(seed: int = 0, dim: int = 16, heads: int = 2) -> TemporalAttention:
    """A layer with random (non-zero) output projection, as after tuning."""
    g = torch.Generator().manual_seed(seed)
    layer = TemporalAttention(dim, heads, dim // heads, generator=g)
    with torch.no_grad():
        layer.to_out.weight.normal_(generator=g)
        layer.to_out.bias.normal_(generator=g)
    return layer


def test_frame_sequences_are_an_exact_inverse_with_frames_in_order():
    chunks, frames, tokens, c = 2, 5, 7, 3
    x = torch.randn(chunks * frames, tokens, c)
    seq = frame_sequences(x, chunks)
    assert seq.shape == (chunks * tokens, frames, c)
    for branch in range(chunks):
        for n in range(tokens):
            assert torch.equal(seq[branch * tokens + n], x[branch * frames:(branch + 1) * frames, n])
    assert torch.equal(from_frame_sequences(seq, chunks), x)


def test_fresh_layer_is_exactly_the_identity():
    layer = TemporalAttention(16, 2, 8, generator=torch.Generator().manual_seed(3))
    x = torch.randn(2 * 6, 10, 16)
    assert torch.equal(layer(x, chunks=2), x)
    assert torch.equal(layer(x.double().float(), chunks=1), x)


def test_branches_never_mix_and_frames_do():
    layer = _trained()
    x = torch.randn(2 * 4, 9, 16)
    out = layer(x, chunks=2)
    other_uncond = x.clone()
    other_uncond[4:] = torch.randn(4, 9, 16)
    assert torch.equal(layer(other_uncond, chunks=2)[:4], out[:4]), "the uncond branch leaked into cond"
    other_frame = x.clone()
    other_frame[3] = torch.randn(9, 16)
    changed = (layer(other_frame, chunks=2)[0] - out[0]).abs().max()
    assert changed > 1e-4, "frame 0 does not see frame 3"


def test_equivariant_to_a_permutation_of_the_frames():
    layer = _trained(1)
    x = torch.randn(6, 5, 16)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.allclose(layer(x[perm]), layer(x)[perm], atol=1e-5)


def test_runs_in_the_input_dtype():
    layer = _trained(2)
    x = torch.randn(4, 3, 16)
    out = layer(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    assert torch.allclose(out.float(), layer(x), atol=0.1)


def test_seeded_init_and_trained_parameters():
    a = TemporalAttention(8, 2, 4, generator=torch.Generator().manual_seed(5))
    b = TemporalAttention(8, 2, 4, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.to_q.weight, TemporalAttention(8, 2, 4, torch.Generator().manual_seed(6)).to_q.weight)
    assert all(p is not a.norm.weight and p is not a.norm.bias for p in a.trained_parameters())
    assert parameter_count({"x": a}) == 3 * 8 * 8 + 8 * 8 + 8


def test_uneven_branches_are_refused():
    with pytest.raises(ValueError, match="cannot be split into 2"):
        TemporalAttention(8, 2, 4)(torch.randn(5, 3, 8), chunks=2)
