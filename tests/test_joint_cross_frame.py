"""Cross-frame K/V for a DiT's joint text + image attention (drive_ops.diffusion.cross_frame_attention)."""

import torch

from drive_ops.diffusion.cross_frame_attention import joint_cross_frame_kv, source_frames

CHUNKS, FRAMES, HEADS, TEXT, IMAGE, DIM = 2, 4, 2, 3, 5, 8


def _qkv(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(CHUNKS * FRAMES, HEADS, TEXT + IMAGE, DIM, generator=g) for _ in range(3)]


def _attend(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2) / DIM ** 0.5, dim=-1) @ v


def test_each_frame_keeps_its_text_and_takes_its_sources_image_tokens():
    q, k, v = _qkv(0)
    index = source_frames(FRAMES, "pix2video", anchor=1)
    k2, v2 = joint_cross_frame_kv(k, v, CHUNKS, index, TEXT)
    assert k2.shape == (CHUNKS * FRAMES, HEADS, 2 * (TEXT + IMAGE), DIM)
    for branch in range(CHUNKS):
        for f in range(FRAMES):
            row = branch * FRAMES + f
            parts_k, parts_v = [], []
            for s in index[f].tolist():
                src = branch * FRAMES + s
                parts_k += [k[row, :, :TEXT], k[src, :, TEXT:]]
                parts_v += [v[row, :, :TEXT], v[src, :, TEXT:]]
            assert torch.equal(k2[row], torch.cat(parts_k, dim=1))
            assert torch.equal(v2[row], torch.cat(parts_v, dim=1))
            expected = _attend(q[row], torch.cat(parts_k, dim=1), torch.cat(parts_v, dim=1))
            assert torch.allclose(_attend(q[row], k2[row], v2[row]), expected, atol=1e-6)


def test_identical_frames_and_the_anchor_keep_plain_self_attention():
    q, k, v = _qkv(1)
    same = [t[:1].expand_as(t).clone() for t in (q, k, v)]
    for mode in ("pix2video", "sparse_causal", "anchor_only"):
        index = source_frames(FRAMES, mode, anchor=0, include_self=mode == "anchor_only")
        k2, v2 = joint_cross_frame_kv(same[1], same[2], CHUNKS, index, TEXT)
        assert torch.allclose(_attend(same[0], k2, v2), _attend(*same), atol=1e-6)
        k2, v2 = joint_cross_frame_kv(k, v, CHUNKS, index, TEXT)
        anchor_rows = [b * FRAMES for b in range(CHUNKS)]
        assert torch.allclose(_attend(q, k2, v2)[anchor_rows], _attend(q, k, v)[anchor_rows], atol=1e-6)


def test_shared_keys_and_values_stay_one_tensor():
    _, k, _ = _qkv(2)
    k2, v2 = joint_cross_frame_kv(k, k, CHUNKS, source_frames(FRAMES, "anchor_only"), TEXT)
    assert v2 is k2
