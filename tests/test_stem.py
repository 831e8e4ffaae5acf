"""STEM EM bases: exact limit with one base per token, monotone EM objective, memory estimate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drive_ops.diffusion.stem import (check_group_call, em_objective, frame_groups, group_aligned_chunk,
                                     stem_attention, stem_bases, stem_memory_bytes)

HEADS, DIM, FRAMES, TOKENS = 2, 16, 3, 16


def _qkv(seed: int = 0, chunks: int = 1):
    g = torch.Generator().manual_seed(seed)
    shape = (chunks * FRAMES, TOKENS, HEADS * DIM)
    return [torch.randn(shape, generator=g) for _ in range(3)]


def _reference(q, k, v, group_frames: int) -> torch.Tensor:
    """Each frame's queries over all tokens of its group of ``group_frames`` frames (full attention)."""
    b, n, c = q.shape
    out = torch.empty_like(q)
    for s in range(0, b, group_frames):
        rows = slice(s, s + group_frames)
        g = q[rows].shape[0]
        qh = q[rows].reshape(g, n, HEADS, DIM).transpose(1, 2)
        kh = k[rows].reshape(1, g * n, HEADS, DIM).transpose(1, 2).expand(g, -1, -1, -1)
        vh = v[rows].reshape(1, g * n, HEADS, DIM).transpose(1, 2).expand(g, -1, -1, -1)
        out[rows] = F.scaled_dot_product_attention(qh, kh, vh).transpose(1, 2).reshape(g, n, c)
    return out


@pytest.mark.parametrize("chunk_frames", [1, 0])
def test_one_base_per_token_reproduces_full_attention(chunk_frames):
    q, k, v = _qkv()
    out = stem_attention(q, k, v, HEADS, chunk_frames=chunk_frames, num_bases=FRAMES * TOKENS, init="tokens")
    group = 1 if chunk_frames == 1 else FRAMES
    torch.testing.assert_close(out, _reference(q, k, v, group), rtol=0, atol=2e-3)


def test_cfg_branches_get_their_own_bases():
    q, k, v = _qkv(chunks=2)
    out = stem_attention(q, k, v, HEADS, chunks=2, num_bases=8, seed=3)
    k2, v2 = k.clone(), v.clone()
    k2[FRAMES:] += 5.0 * torch.randn(k2[FRAMES:].shape, generator=torch.Generator().manual_seed(9))
    v2[FRAMES:] *= -1
    changed = stem_attention(q, k2, v2, HEADS, chunks=2, num_bases=8, seed=3)
    torch.testing.assert_close(changed[:FRAMES], out[:FRAMES], rtol=0, atol=0)   # branch 0 never sees branch 1
    assert (changed[FRAMES:] - out[FRAMES:]).abs().max() > 0.1


@pytest.mark.parametrize("init", ["gaussian", "tokens"])
@pytest.mark.parametrize("tau", [0.01, 0.5])
def test_em_objective_never_increases(init, tau):
    g = torch.Generator().manual_seed(7)
    keys = torch.randn(HEADS, 256, DIM, generator=g) * 2 + torch.randn(HEADS, 1, DIM, generator=g)
    trace: list[torch.Tensor] = []
    stem_bases(keys, keys, num_bases=16, iters=8, tau=tau, init=init, generator=torch.Generator().manual_seed(1),
               trace=trace)
    values = [em_objective(b, keys, tau) for b in trace]
    assert len(values) == 9
    for before, after in zip(values, values[1:]):
        assert after <= before + 1e-5 * abs(before), values
    assert values[-1] < values[0]


def test_bases_are_seeded_and_bounded():
    q, k, v = _qkv()
    a = stem_attention(q, k, v, HEADS, num_bases=8, seed=5)
    b = stem_attention(q, k, v, HEADS, num_bases=8, seed=5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    kb, vb = stem_bases(k[0].reshape(TOKENS, HEADS, DIM).transpose(0, 1), v[0].reshape(TOKENS, HEADS, DIM).transpose(0, 1),
                        num_bases=1000, generator=torch.Generator().manual_seed(0))
    assert kb.shape == vb.shape == (HEADS, TOKENS, DIM)     # never more bases than tokens


def test_frame_groups_and_memory_estimate():
    assert frame_groups(5, 0) == [slice(0, 5)]
    assert frame_groups(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    est = stem_memory_bytes(frames=8, tokens=4096, heads=8, dim_head=40, num_bases=256)
    # docs/algorithms.md (STEM): 8 frames at 64x64, fp16 full logits ~17 GB, STEM z+logits ~134 MB (fp16)
    assert 16e9 < est["full_attention_bytes"] < 18e9
    tokens = 8 * 4096
    assert est["stem_bytes"] == 4 * (2 * 8 * tokens * 40 + 2 * 8 * tokens * 256)   # fp32 K, V, logits, z
    chunked = stem_memory_bytes(frames=48, tokens=4096, heads=8, dim_head=40, chunk_frames=8)
    assert chunked == dict(est, frames_per_group=8)


@pytest.mark.parametrize("init", ["gaussian", "tokens"])
def test_calls_holding_whole_groups_equal_one_call(init):
    """A 6-frame clip in 2-frame groups: calls of frames 0-3 and 4-5 (offsets given) give exactly the one-call result,
    because each group's init draw depends on (seed, its first frame), not on the call it lands in."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2 * 6, TOKENS, HEADS * DIM, generator=g) for _ in range(3))   # cond + uncond branches
    opts = dict(heads=HEADS, chunks=2, chunk_frames=2, num_bases=4, init=init, seed=11)
    whole = stem_attention(q, k, v, **opts)

    def rows(part):
        """Frames ``part`` of both branches, cond first: the batch a chunked UNet call holds."""
        return tuple(torch.cat([t[part], t[6:][part]]) for t in (q, k, v))

    pieces = []
    for part in (slice(0, 4), slice(4, 6)):
        pq, pk, pv = rows(part)
        pieces.append(stem_attention(pq, pk, pv, frame_offset=part.start, **opts))
    chunked = torch.cat([pieces[0][:4], pieces[1][:2], pieces[0][4:], pieces[1][2:]])
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)
    shifted = stem_attention(*rows(slice(4, 6)), **opts)           # the same frames, told they start the clip
    assert not torch.equal(shifted, pieces[1])


def test_chunking_keeps_stem_groups_whole_or_refuses():
    assert group_aligned_chunk(per_call=7, total=12, chunk_frames=0, user_cap=0) == 12   # whole clip: one call
    assert group_aligned_chunk(per_call=7, total=12, chunk_frames=3, user_cap=0) == 6
    assert group_aligned_chunk(per_call=2, total=12, chunk_frames=3, user_cap=0) == 3    # at least one group
    assert group_aligned_chunk(per_call=10, total=12, chunk_frames=4, user_cap=10) == 8
    with pytest.raises(ValueError, match="max_grids_per_call 5 splits them; set max_grids_per_call to 0"):
        group_aligned_chunk(per_call=5, total=12, chunk_frames=0, user_cap=5)
    with pytest.raises(ValueError, match="splits STEM's 8-frame groups; set it to a multiple of 8"):
        group_aligned_chunk(per_call=2, total=12, chunk_frames=8, user_cap=2)
    check_group_call(0, 12, 12, 0)
    check_group_call(4, 4, 12, 4)
    check_group_call(8, 3, 11, 4)                                  # the last, shorter group
    for start, batch, total, chunk in ((0, 6, 12, 0), (2, 4, 12, 4), (4, 3, 12, 4)):
        with pytest.raises(ValueError, match="would depend on the split"):
            check_group_call(start, batch, total, chunk)
