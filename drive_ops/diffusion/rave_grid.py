"""RAVE grids: frames tiled g x g into grid images, reshuffled across grids every step.

A run over ``T`` frames uses ``T_pad = ceil(T / g^2) * g^2`` slots. A *permutation* is a
LongTensor [T_pad] of slot contents over "virtual frames" ``0..T_pad-1``; virtual frames
``>= T`` are copies of the last frame (the padding), so no user frame is ever dropped.
Slots ``j*g^2 .. (j+1)*g^2 - 1`` fill grid ``j`` row-major. Composing then decomposing is
exact for every ``T``, because decomposition only *gathers* each real frame's own slot.
Permutations come from a private ``torch.Generator`` seeded from (seed, step), so they
are reproducible and never touch the global RNG.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..core.chunking import chunk_slices

_GOLDEN = 0x9E3779B97F4A7C15
_MASK63 = (1 << 63) - 1


def padded_length(frames: int, grid_size: int) -> int:
    """Slots needed for ``frames`` frames in g x g grids: the next multiple of ``g^2``."""
    if frames < 1:
        raise ValueError("the grid needs at least one frame")
    if grid_size < 1:
        raise ValueError(f"grid_size must be at least 1, got {grid_size}")
    cells = grid_size * grid_size
    return -(-frames // cells) * cells


def step_seed(seed: int, step: int) -> int:
    """A 63-bit generator seed unique to (seed, step), so nearby seeds never share permutations."""
    return ((seed & _MASK63) * _GOLDEN + step * 0xBF58476D1CE4E5B9 + 1) & _MASK63


def grid_permutation(frames: int, grid_size: int, seed: int, step: int, shuffle: bool = True) -> torch.Tensor:
    """The slot order [T_pad] for one step: a fresh random permutation, or the identity without shuffle."""
    total = padded_length(frames, grid_size)
    if not shuffle:
        return torch.arange(total)
    gen = torch.Generator(device="cpu").manual_seed(step_seed(seed, step))
    return torch.randperm(total, generator=gen)


def _check_perm(perm: torch.Tensor, frames: int, grid_size: int) -> None:
    if perm.dim() != 1 or perm.numel() != padded_length(frames, grid_size):
        raise ValueError(f"a permutation for {frames} frames on a {grid_size}x{grid_size} grid has "
                         f"{padded_length(frames, grid_size)} entries, got shape {tuple(perm.shape)}")


def tile(frames: torch.Tensor, grid_size: int) -> torch.Tensor:
    """[n*g^2, C, h, w] -> [n, C, g*h, g*w], cells row-major."""
    b, c, h, w = frames.shape
    g = grid_size
    if b % (g * g):
        raise ValueError(f"{b} frames do not fill {g}x{g} grids")
    return frames.reshape(b // (g * g), g, g, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(b // (g * g), c, g * h, g * w)


def untile(grids: torch.Tensor, grid_size: int) -> torch.Tensor:
    """[n, C, g*h, g*w] -> [n*g^2, C, h, w], the inverse of :func:`tile`."""
    n, c, gh, gw = grids.shape
    g = grid_size
    if gh % g or gw % g:
        raise ValueError(f"a {gw}x{gh} grid does not split into {g}x{g} cells")
    h, w = gh // g, gw // g
    return grids.reshape(n, c, g, h, g, w).permute(0, 2, 4, 1, 3, 5).reshape(n * g * g, c, h, w)


def compose_grids(frames: torch.Tensor, perm: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Frames [T, C, h, w] (frame order) -> grids [T_pad/g^2, C, g*h, g*w] in slot order ``perm``."""
    _check_perm(perm, frames.shape[0], grid_size)
    index = perm.clamp(max=frames.shape[0] - 1).to(frames.device)
    return tile(frames.index_select(0, index), grid_size)


def source_slots(perm: torch.Tensor, frames: int) -> torch.Tensor:
    """For each real frame, the slot that holds it: ``argsort(perm)[:T]``."""
    return torch.argsort(perm)[:frames]


def decompose_grids(grids: torch.Tensor, perm: torch.Tensor, grid_size: int, frames: int) -> torch.Tensor:
    """Grids in slot order ``perm`` -> frames [T, C, h, w] in frame order; padding slots are dropped."""
    _check_perm(perm, frames, grid_size)
    slots = untile(grids, grid_size)
    return slots.index_select(0, source_slots(perm, frames).to(grids.device))


def largest_fitting(count: int, cost: Callable[[int], float], budget: float) -> int:
    """The largest ``k`` in ``1..count`` with ``cost(k) < budget`` (at least 1); ``cost`` must grow with k.

    Strictly below, as ComfyUI's own batching test (``memory_required * 1.5 < free``), so a
    chunk chosen here is never split again into separate cond and uncond calls.
    """
    lo, hi = 1, count
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) < budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def run_on_grids(fn: Callable[[torch.Tensor, slice], Sequence[torch.Tensor | None]], frames: torch.Tensor,
                 perm: torch.Tensor, grid_size: int, max_grids_per_call: int) -> list[torch.Tensor | None]:
    """Evaluate ``fn`` on the grids of ``frames`` a chunk at a time and bring its outputs back to frame order.

    ``fn(grid_chunk [k, C, g*h, g*w], grid_slice)`` returns a list of outputs shaped like
    its input (or ``None`` entries, kept as ``None``); the chunks are concatenated and
    decomposed, so the result is [T, C, h, w] per output whatever the chunking.
    """
    grids = compose_grids(frames, perm, grid_size)
    per_output: list[list[torch.Tensor] | None] | None = None
    for part in chunk_slices(grids.shape[0], max_grids_per_call):
        outs = list(fn(grids[part], part))
        if per_output is None:
            per_output = [None if o is None else [] for o in outs]
        for store, out in zip(per_output, outs):
            if store is not None:
                store.append(out)
    return [None if parts is None else decompose_grids(torch.cat(parts), perm, grid_size, frames.shape[0])
            for parts in per_output]
