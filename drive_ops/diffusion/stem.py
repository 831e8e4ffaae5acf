"""STEM inversion attention ("A Video is Worth 256 Bases", Li et al. CVPR 2024).

During inversion every self-attention layer replaces per-frame keys/values with a small
set of bases estimated by EM over the key tokens of all frames (or of chunks of frames):
each frame's queries then see spatio-temporal context at a cost linear in the clip length
(docs/algorithms.md, STEM).

The EM is a soft spherical clustering of the keys. With unit-norm bases mu and
responsibilities z over bases, the E-step z = softmax(<mu, k> / tau) and the M-step
mu = normalise(sum_n z k) are coordinate ascent on the free energy
sum_n z <mu, k> / tau + H(z); after each E-step that equals
sum_n logsumexp_m(<mu_m, k_n> / tau). ``em_objective`` returns its negative (times tau,
per token), which therefore never increases over the iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.chunking import chunk_slices
from .rave_grid import step_seed

INITS = ("gaussian", "tokens")


def _initial_bases(keys: torch.Tensor, num_bases: int, init: str, generator: torch.Generator | None) -> torch.Tensor:
    """keys [h, n, d] (float32) -> initial bases [h, M, d].

    gaussian: per-head, per-channel Normal(mean, std) of the keys (the official code);
    tokens: a random subset of distinct key tokens (with M = n: every key, the exact limit).
    """
    h, n, d = keys.shape
    if init == "gaussian":
        std, mean = torch.std_mean(keys, dim=1, keepdim=True)
        noise = torch.randn(h, num_bases, d, generator=generator, device=keys.device, dtype=keys.dtype)
        return mean + std * noise
    if init == "tokens":
        pick = torch.randperm(n, generator=generator, device=keys.device)[:num_bases]
        return keys[:, pick]
    raise ValueError(f"unknown STEM base init {init!r}; use one of {', '.join(INITS)}")


def _responsibilities(bases: torch.Tensor, keys: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step: (z [h, n, M] softmax over bases, logits [h, n, M]) for unit-normalised bases."""
    logits = torch.einsum("hnd,hmd->hnm", keys, F.normalize(bases, dim=-1)) / tau
    return torch.softmax(logits, dim=-1), logits


def em_objective(bases: torch.Tensor, keys: torch.Tensor, tau: float) -> float:
    """-tau * mean_n logsumexp_m(<normalise(mu_m), k_n> / tau): EM never increases it."""
    _, logits = _responsibilities(bases.float(), keys.float(), tau)
    return float(-tau * torch.logsumexp(logits, dim=-1).mean())


def stem_bases(keys: torch.Tensor, values: torch.Tensor, num_bases: int = 256, iters: int = 5, tau: float = 0.01,
               init: str = "gaussian", generator: torch.Generator | None = None,
               trace: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """EM bases for one group of tokens.

    keys, values: [h, n, d] (all frames' tokens of one group, per head). Returns
    (key_bases, value_bases), each [h, M, d] in the input dtype, with M = min(num_bases, n)
    (more bases than tokens adds nothing). The EM runs in float32. ``trace``, when given,
    receives the initial key bases and those after every iteration (for checking convergence).
    """
    if iters < 1 or num_bases < 1 or tau <= 0:
        raise ValueError(f"STEM needs iters >= 1, num_bases >= 1 and tau > 0 (got {iters}, {num_bases}, {tau})")
    k, v = keys.float(), values.float()
    bases = _initial_bases(k, min(num_bases, k.shape[1]), init, generator)
    if trace is not None:
        trace.append(bases)
    for _ in range(iters):
        z, _ = _responsibilities(bases, k, tau)
        z = z / (z.sum(dim=1, keepdim=True) + 1e-4)          # weights over tokens for each base
        bases = torch.einsum("hnm,hnd->hmd", z, k)
        if trace is not None:
            trace.append(bases)
    value_bases = torch.einsum("hnm,hnd->hmd", z, v)
    return bases.to(keys.dtype), value_bases.to(values.dtype)


def frame_groups(num_frames: int, chunk_frames: int) -> list[slice]:
    """Consecutive frame ranges that share one basis set (chunk_frames 0 = the whole batch)."""
    return chunk_slices(num_frames, num_frames if chunk_frames <= 0 else chunk_frames)


def stem_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, chunks: int = 1,
                   chunk_frames: int = 0, num_bases: int = 256, iters: int = 5, tau: float = 0.01,
                   init: str = "gaussian", seed: int = 0, frame_offset: int = 0) -> torch.Tensor:
    """Self-attention of every frame against EM bases of its frame group.

    q, k, v: [B, N, h*d] projected tokens, B = chunks * F frames (CFG branches kept
    apart). Returns [B, N, h*d]. The frames are frames ``frame_offset`` onward of the
    clip, so a call that holds whole groups of a longer clip gives exactly what one call
    over the clip gives them: each group's base init is drawn from a generator seeded by
    (``seed``, the group's first frame in the clip), the same draw for every CFG branch,
    at every layer and step.
    """
    b, n, c = q.shape
    if b % chunks:
        raise ValueError(f"a batch of {b} cannot be split into {chunks} CFG branches of equal size")
    d = c // heads
    frames = b // chunks
    out = torch.empty_like(q)
    for branch in range(chunks):
        for group in frame_groups(frames, chunk_frames):
            generator = torch.Generator(device=q.device).manual_seed(step_seed(seed, frame_offset + group.start))
            rows = slice(branch * frames + group.start, branch * frames + group.stop)
            g = group.stop - group.start
            kh = k[rows].reshape(g * n, heads, d).transpose(0, 1)           # [h, g*N, d]
            vh = v[rows].reshape(g * n, heads, d).transpose(0, 1)
            kb, vb = stem_bases(kh, vh, num_bases, iters, tau, init, generator)
            qh = q[rows].reshape(g, n, heads, d).transpose(1, 2)            # [g, h, N, d]
            att = F.scaled_dot_product_attention(qh, kb.unsqueeze(0).expand(g, -1, -1, -1),
                                                 vb.unsqueeze(0).expand(g, -1, -1, -1))
            out[rows] = att.transpose(1, 2).reshape(g, n, c)
    return out


def stem_memory_bytes(frames: int, tokens: int, heads: int, dim_head: int, num_bases: int = 256,
                      chunk_frames: int = 0, dtype_bytes: int = 2) -> dict[str, int]:
    """Peak extra memory of one STEM layer call vs full spatio-temporal attention (estimates).

    STEM holds, per frame group of G frames, float32 copies of K and V and two [h, G*N, M]
    float32 tensors (logits, responsibilities); full attention over the group would hold the
    [h, G*N, G*N] logits in ``dtype_bytes`` (naive, no flash kernel).
    """
    group = frames if chunk_frames <= 0 else min(chunk_frames, frames)
    n = group * tokens
    m = min(num_bases, n)
    stem = 4 * (2 * heads * n * dim_head + 2 * heads * n * m)
    full = dtype_bytes * heads * n * n
    return {"frames_per_group": group, "bases": m, "stem_bytes": stem, "full_attention_bytes": full}


def group_aligned_chunk(per_call: int, total: int, chunk_frames: int, user_cap: int) -> int:
    """Batch elements per UNet call that keep STEM's frame groups whole (so chunked equals unchunked).

    ``per_call`` is what memory (or the user's cap ``user_cap``, 0 = none) allows of
    ``total``. With ``chunk_frames`` 0 the bases span the whole batch, so every element goes
    into one call; otherwise calls hold whole groups (a multiple of ``chunk_frames``, at least one
    group). A user cap that would split the groups is refused, naming the fix.
    """
    if chunk_frames <= 0:
        if 0 < user_cap < total:
            raise ValueError(f"STEM (chunk_frames 0) estimates its bases over the whole clip, so all {total} "
                             f"frames (or grids) must go through the UNet together, but max_grids_per_call "
                             f"{user_cap} splits them; set max_grids_per_call to 0, or give STEM Attention (DRIVE) "
                             f"a chunk_frames (e.g. {max(1, user_cap)}) so each call holds whole frame groups")
        return total
    if 0 < user_cap < min(chunk_frames, total):
        raise ValueError(f"max_grids_per_call {user_cap} splits STEM's {chunk_frames}-frame groups; set it to a "
                         f"multiple of {chunk_frames} (or 0), or lower chunk_frames to {user_cap}")
    return min(total, max(chunk_frames, per_call // chunk_frames * chunk_frames))


def check_group_call(start: int, batch: int, total: int, chunk_frames: int) -> None:
    """Refuse a UNet call whose frames ``start:start+batch`` of ``total`` would give STEM other bases than
    the whole batch would (chunked calls must hold whole frame groups)."""
    whole = start == 0 and batch == total
    if chunk_frames <= 0:
        ok = whole
    else:
        ok = start % chunk_frames == 0 and (batch % chunk_frames == 0 or start + batch == total)
    if not ok:
        groups = "the whole clip" if chunk_frames <= 0 else f"groups of {chunk_frames} frames"
        raise ValueError(f"STEM estimates its bases over {groups}, but this UNet call holds frames {start}-"
                         f"{start + batch - 1} of {total} (the batch was split by chunked grid calls, context "
                         "windows or another pack), so its result would depend on the split; run the STEM "
                         "model without context windows, with max_grids_per_call 0 or a multiple of "
                         "chunk_frames")
