"""Cross-frame attention maths on a tiny diffusers UNet: identities that must hold exactly."""

from __future__ import annotations

import pytest
import torch
from tiny_unet import self_attention_names, tiny_unet

from drive_ops.core.chunking import chunks_outward
from drive_ops.diffusion.cross_frame_attention import (MODES, ChunkCarry, batch_in_frame_order, blocks_for,
                                                       gather_context, neighbour_toward_anchor, source_frames)

FRAMES = 4


class CrossFrameProcessor:
    """attn1 processor that feeds K/V from ``gather_context`` (what the ComfyUI attn1_patch returns)."""

    def __init__(self, index: torch.Tensor, chunks: int):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.index, self.chunks, self.base = index, chunks, AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        context = gather_context(hidden_states, self.chunks, self.index)
        return self.base(attn, hidden_states, context, attention_mask, temb)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet()


def _run(unet, x, cond, index=None, chunks=1):
    from diffusers.models.attention_processor import AttnProcessor2_0

    names = self_attention_names(unet)
    assert names, "the tiny UNet has no self-attention layers"
    procs = {n: (AttnProcessor2_0() if index is None or n not in names else CrossFrameProcessor(index, chunks))
             for n in unet.attn_processors}
    unet.set_attn_processor(procs)
    with torch.no_grad():
        return unet(x, torch.tensor(500), encoder_hidden_states=cond).sample


def _inputs(frames: int, chunks: int, identical: bool):
    g = torch.Generator().manual_seed(1)
    if identical:
        x = torch.randn(chunks, 1, 4, 8, 8, generator=g).expand(chunks, frames, 4, 8, 8)
    else:
        x = torch.randn(chunks, frames, 4, 8, 8, generator=g)
    cond = torch.randn(chunks, 1, 5, 32, generator=g).expand(chunks, frames, 5, 32)  # one prompt per CFG branch
    return x.reshape(-1, 4, 8, 8).contiguous(), cond.reshape(-1, 5, 32).contiguous()


def test_source_tables():
    assert source_frames(4, "pix2video").tolist() == [[0, 0], [0, 0], [0, 1], [0, 2]]
    assert source_frames(4, "pix2video", anchor=2).tolist() == [[2, 1], [2, 2], [2, 2], [2, 2]]
    assert source_frames(3, "sparse_causal").tolist() == [[0, 0], [0, 0], [0, 1]]
    assert source_frames(3, "anchor_only", anchor=1, include_self=True).tolist() == [[0, 1], [1, 1], [2, 1]]
    assert neighbour_toward_anchor(5, 2).tolist() == [1, 2, 2, 2, 3]
    with pytest.raises(ValueError, match="anchor"):
        source_frames(3, "pix2video", anchor=3)
    with pytest.raises(ValueError, match="mode"):
        source_frames(3, "tokenflow")
    assert blocks_for("pix2video", "mode default") == ("output",)
    assert blocks_for("sparse_causal", "mode default") == ("input", "middle", "output")


def test_gather_keeps_cfg_branches_apart():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(6, 2, 1)  # 2 branches x 3 frames x 2 tokens
    ctx = gather_context(tokens, 2, source_frames(3, "pix2video"))
    assert ctx.shape == (6, 4, 1)
    assert ctx[5, :, 0].tolist() == [6, 7, 8, 9]        # branch 1, frame 2 -> branch 1 frames 0 and 1
    assert ctx[2, :, 0].tolist() == [0, 1, 2, 3]        # branch 0, frame 2 -> branch 0 frames 0 and 1
    with pytest.raises(ValueError, match="CFG branches"):
        gather_context(tokens, 4, source_frames(3, "pix2video"))


def test_own_frame_as_source_equals_plain_attention(unet):
    x, cond = _inputs(FRAMES, 2, identical=False)
    own = torch.arange(FRAMES)[:, None]
    torch.testing.assert_close(_run(unet, x, cond, own, chunks=2), _run(unet, x, cond), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def identical(unet):
    x, cond = _inputs(FRAMES, 2, identical=True)
    return x, cond, _run(unet, x, cond)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("include_self, anchor", [(False, 0), (True, 2)])
def test_identical_frames_equal_plain_attention(unet, identical, mode, include_self, anchor):
    x, cond, plain = identical
    index = source_frames(FRAMES, mode, anchor, include_self)
    torch.testing.assert_close(_run(unet, x, cond, index, chunks=2), plain, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_distinct_frames_borrow_from_others_but_the_anchor_does_not(unet, mode):
    x, cond = _inputs(FRAMES, 2, identical=False)
    plain = _run(unet, x, cond).reshape(2, FRAMES, 4, 8, 8)
    patched = _run(unet, x, cond, source_frames(FRAMES, mode, anchor=1), chunks=2).reshape(2, FRAMES, 4, 8, 8)
    torch.testing.assert_close(patched[:, 1], plain[:, 1], rtol=0, atol=1e-5)
    for f in (0, 2, 3):
        assert (patched[:, f] - plain[:, f]).abs().max() > 1e-3


def test_frame_order_check():
    frames = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    assert batch_in_frame_order(torch.cat([frames, frames]), frames, chunks=2)
    assert not batch_in_frame_order(torch.cat([frames, frames[[1, 0, 2]]]), frames, chunks=2)   # shuffled
    assert not batch_in_frame_order(frames[:2], frames, chunks=1)                                # chunked call
    assert not batch_in_frame_order(torch.randn(1, 4, 4, 4), frames[:1], chunks=1)               # a grid


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("anchor", [0, 2, 6])
@pytest.mark.parametrize("per_chunk", [1, 2, 3])
def test_chunks_carrying_anchor_and_neighbour_equal_one_gather(mode, anchor, per_chunk):
    """Chunked, in the order chunks_outward runs them, the context of every frame is bit for bit the one-call one,
    and what is carried stays small: the anchor and the boundary frames."""
    frames, tokens, channels = 7, 5, 6
    g = torch.Generator().manual_seed(anchor)
    keys, values = torch.randn(frames, tokens, channels, generator=g), torch.randn(frames, tokens, channels, generator=g)
    for include_self in (False, True):
        index = source_frames(frames, mode, anchor, include_self)
        whole_k, whole_v = gather_context(keys, 1, index), gather_context(values, 1, index)
        carry = ChunkCarry(index)
        for part in chunks_outward(frames, per_chunk, anchor):
            ctx, val = carry.gather("layer", keys[part], values[part], part.start)
            assert torch.equal(ctx, whole_k[part]) and torch.equal(val, whole_v[part])
            assert len(carry.kept["layer"]) <= 3
        assert not carry.kept["layer"]                             # everything is dropped once all frames are done


def test_chunks_out_of_order_are_refused():
    carry = ChunkCarry(source_frames(4, "pix2video"))
    with pytest.raises(RuntimeError, match="outward from the anchor"):
        carry.gather("layer", torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), 2)


def test_carried_keys_shared_with_values_are_kept_once():
    index = source_frames(6, "pix2video", 0)
    tokens = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(2))
    carry, kept = ChunkCarry(index), 0
    for part in chunks_outward(6, 2, 0):
        chunk = tokens[part]
        ctx, val = carry.gather("layer", chunk, chunk, part.start)
        assert val is ctx and torch.equal(ctx, gather_context(tokens, 1, index)[part])
        assert all(k is v for k, v in carry.kept["layer"].values())
        kept += len(carry.kept["layer"])
    assert kept > 0
