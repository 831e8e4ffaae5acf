"""Cross-frame self-attention: keys/values taken from other frames of the batch.

Pix2Video, Tune-A-Video / FateZero ("sparse-causal") and Text2Video-Zero all replace a
frame's self-attention keys and values with tokens of other frames (the anchor, the
previous frame). In a batched UNet call over a whole clip every frame's features at the
same layer and step already exist, so the sequential algorithms become one gather over
the batch (docs/algorithms.md, cross-frame attention). The UNet batch holds ``chunks`` CFG branches
(cond / uncond), each ``F`` frames in frame order; frames only ever borrow from frames of
their own branch.

Every frame gets the same number ``k`` of source frames so the whole batch stays one
tensor. Where a frame's sources repeat (the anchor frame itself, or the frame next to the
anchor whose "previous" frame is the anchor), the repeated tokens are duplicated, as in
Pix2Video's own code (frame 1 attends to ``cat(f0, f0)``). Duplicating *all* tokens of a
frame leaves softmax attention unchanged, so the anchor frame keeps plain self-attention.
"""

from __future__ import annotations

import torch

MODES = ("pix2video", "sparse_causal", "anchor_only")
LAYER_CHOICES = ("mode default", "decoder", "all")

_DEFAULT_BLOCKS = {
    "pix2video": ("output",),
    "sparse_causal": ("input", "middle", "output"),
    "anchor_only": ("input", "middle", "output"),
}


def neighbour_toward_anchor(num_frames: int, anchor: int) -> torch.Tensor:
    """For each frame, the adjacent frame one step closer to the anchor; the anchor maps to itself.

    Frames after the anchor look back (f-1), frames before it look forward (f+1): the
    order in which Pix2Video would process the clip outward from its anchor (with the
    anchor at 0 this is the usual "previous frame"). Returns a LongTensor [F].
    """
    check_anchor(num_frames, anchor)
    f = torch.arange(num_frames)
    return torch.where(f > anchor, f - 1, torch.where(f < anchor, f + 1, f))


def check_anchor(num_frames: int, anchor: int) -> None:
    if not 0 <= anchor < num_frames:
        raise ValueError(f"anchor frame {anchor} is outside the batch of {num_frames} frames; "
                         f"pick an anchor between 0 and {num_frames - 1}")


def source_frames(num_frames: int, mode: str, anchor: int = 0, include_self: bool = False) -> torch.Tensor:
    """The frames whose tokens form each frame's keys/values: LongTensor [F, k].

    pix2video: [anchor, previous]; sparse_causal: [first, previous], where "first" is the
    anchor (Tune-A-Video uses frame 0); anchor_only: [anchor] (Text2Video-Zero: the first
    frame only). ``include_self`` puts the frame's own tokens first.
    """
    if mode not in MODES:
        raise ValueError(f"unknown cross-frame mode {mode!r}; use one of {', '.join(MODES)}")
    check_anchor(num_frames, anchor)
    anchors = torch.full((num_frames,), anchor, dtype=torch.long)
    cols = [anchors] if mode == "anchor_only" else [anchors, neighbour_toward_anchor(num_frames, anchor)]
    if include_self:
        cols.insert(0, torch.arange(num_frames))
    return torch.stack(cols, dim=1)


def gather_context(tokens: torch.Tensor, chunks: int, index: torch.Tensor) -> torch.Tensor:
    """Concatenate each frame's source-frame tokens, per CFG branch.

    tokens: [B, N, C] with B = chunks * F (each chunk F frames in frame order);
    index: [F, k] from ``source_frames``. Returns [B, k*N, C].
    """
    b, n, c = tokens.shape
    if chunks < 1 or b % chunks:
        raise ValueError(f"a batch of {b} cannot be split into {chunks} CFG branches of equal size")
    frames = b // chunks
    if index.shape[0] != frames:
        raise ValueError(f"source table is for {index.shape[0]} frames but each CFG branch holds {frames}")
    per_chunk = tokens.reshape(chunks, frames, n, c)
    picked = per_chunk[:, index.to(tokens.device)]  # [chunks, F, k, N, C]
    return picked.reshape(b, index.shape[1] * n, c)


def blocks_for(mode: str, layers: str) -> tuple[str, ...]:
    """UNet block kinds ("input" / "middle" / "output") whose self-attention is patched."""
    if layers == "mode default":
        return _DEFAULT_BLOCKS[mode]
    if layers == "decoder":
        return ("output",)
    if layers == "all":
        return ("input", "middle", "output")
    raise ValueError(f"unknown layer choice {layers!r}; use one of {', '.join(LAYER_CHOICES)}")


def batch_in_frame_order(unet_batch: torch.Tensor, frames: torch.Tensor, chunks: int) -> bool:
    """Whether a UNet call's input is the sampler's frames, in order, once per CFG branch.

    unet_batch: [B, C, ...] as the model is called; frames: [F, C, ...] as the sampler holds
    them. False when something between the two re-batched the frames (the RAVE grid
    shuffle, chunked calls, context windows, area conditioning): frame indices inside the
    UNet then no longer name frames of the clip.
    """
    if unet_batch.shape[1:] != frames.shape[1:] or unet_batch.shape[0] != chunks * frames.shape[0]:
        return False
    return all(torch.equal(part, frames) for part in unet_batch.split(frames.shape[0]))


class ChunkCarry:
    """K/V tokens carried from one chunk of frames to the next within a step, so chunked calls equal one call.

    When a clip goes through the UNet a run of frames at a time (in the order of
    ``core.chunking.chunks_outward``), a frame's anchor or neighbour may sit in an earlier
    chunk. For every layer and CFG branch (``key``) this keeps the tokens of frames that a
    frame not yet processed still needs, and drops them once every frame that needs them
    is done: at most the anchor and the chunk boundary's frame per layer and branch.
    """

    def __init__(self, index: torch.Tensor):
        self.index = index.cpu()
        users: dict[int, set[int]] = {}
        for frame, sources in enumerate(self.index.tolist()):
            for source in sources:
                users.setdefault(source, set()).add(frame)
        self.users = users
        self.kept: dict[object, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}
        self.done: dict[object, set[int]] = {}

    def gather(self, key: object, keys: torch.Tensor, values: torch.Tensor,
               start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context for frames ``start:start+F`` of one branch: keys/values [F, N, C] -> each [F, k*N, C].

        Equal, bit for bit, to :func:`gather_context` on the whole clip for those frames.
        Passing the same tensor as keys and values (the usual case) keeps one copy.
        """
        shared = values is keys
        frames = keys.shape[0]
        span = range(start, start + frames)
        kept = self.kept.setdefault(key, {})
        done = self.done.setdefault(key, set())
        needed = self.index[start:start + frames]
        outside = sorted({s for s in needed.reshape(-1).tolist() if s not in span})
        missing = [s for s in outside if s not in kept]
        if missing:
            raise RuntimeError(f"cross-frame attention needs frames {missing} before frames {start}-"
                               f"{start + frames - 1}, but no earlier chunk of this step held them; chunks must "
                               "run outward from the anchor frame")
        pool_k = torch.cat([torch.stack([kept[s][0] for s in outside]), keys]) if outside else keys
        pool_v = pool_k if shared else (
            torch.cat([torch.stack([kept[s][1] for s in outside]), values]) if outside else values)
        slot = {s: i for i, s in enumerate(outside)}
        slot.update({s: len(outside) + i for i, s in enumerate(span)})
        picked = torch.tensor([[slot[s] for s in row] for row in needed.tolist()], device=keys.device)
        c = keys.shape[-1]
        context = pool_k[picked].reshape(frames, -1, c)
        value = context if shared else pool_v[picked].reshape(frames, -1, c)
        done.update(span)
        for s in span:
            if self.users.get(s, set()) - done:
                kept_keys = keys[s - start].clone()                        # not a view of the chunk
                kept[s] = (kept_keys, kept_keys if shared else values[s - start].clone())
        for s in [s for s in kept if not self.users.get(s, set()) - done]:
            del kept[s]
        return context, value


def joint_cross_frame_kv(keys: torch.Tensor, values: torch.Tensor, chunks: int, index: torch.Tensor,
                         text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-frame K/V for a DiT's joint text + image attention (Flux's double and single blocks).

    keys, values: [B, H, L, D] (heads split, RoPE applied) with B = chunks * F frames in frame
    order per CFG branch and L = ``text_tokens`` text tokens followed by the image tokens;
    index: [F, k] from ``source_frames``. Returns each [B, H, k*L, D]: for frame f, per source
    frame s in ``index[f]``, f's own text tokens followed by s's image tokens. The text stays
    the frame's own; repeating it once per source keeps the anchor's (and identical frames')
    attention exactly plain self-attention, as duplicating all tokens leaves softmax unchanged.
    """
    b, heads, length, dim = keys.shape
    if chunks < 1 or b % chunks:
        raise ValueError(f"a batch of {b} cannot be split into {chunks} CFG branches of equal size")
    if not 0 <= text_tokens < length:
        raise ValueError(f"{text_tokens} text tokens leave no image tokens in a sequence of {length}")
    frames = b // chunks
    if index.shape[0] != frames:
        raise ValueError(f"source table is for {index.shape[0]} frames but each CFG branch holds {frames}")
    index = index.to(keys.device)

    def gather(tokens: torch.Tensor) -> torch.Tensor:
        per = tokens.reshape(chunks, frames, heads, length, dim)
        text = per[:, :, None, :, :text_tokens].expand(-1, -1, index.shape[1], -1, -1, -1)
        image = per[:, index, :, text_tokens:]                            # [chunks, F, k, H, I, D]
        joined = torch.cat([text, image], dim=4)                          # [chunks, F, k, H, L, D]
        return joined.transpose(2, 3).reshape(b, heads, index.shape[1] * length, dim)

    gathered = gather(keys)
    return gathered, (gathered if values is keys else gather(values))
