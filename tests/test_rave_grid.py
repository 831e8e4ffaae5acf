"""RAVE grid maths: exact compose/decompose for any T, seeded permutations, chunking, masks to latents."""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion import masked_cfg, rave_grid, schedule
from drive_ops.core.chunking import chunk_slices


@pytest.mark.parametrize("grid_size", [1, 2, 3])
@pytest.mark.parametrize("frames", [1, 2, 4, 5, 8, 9, 10, 17])
def test_compose_decompose_round_trip_is_exact(frames, grid_size):
    x = torch.randn(frames, 4, 3, 5)
    for step in range(3):
        perm = rave_grid.grid_permutation(frames, grid_size, seed=7, step=step)
        grids = rave_grid.compose_grids(x, perm, grid_size)
        assert grids.shape == (rave_grid.padded_length(frames, grid_size) // grid_size ** 2, 4, 3 * grid_size,
                               5 * grid_size)
        assert torch.equal(rave_grid.decompose_grids(grids, perm, grid_size, frames), x)


def test_tile_is_row_major_and_pads_with_the_last_frame():
    x = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 2)
    grids = rave_grid.compose_grids(x, torch.arange(8), 2)
    assert grids.shape == (2, 1, 4, 4)
    assert grids[0, 0, ::2, ::2].tolist() == [[0, 1], [2, 3]]
    assert grids[1, 0, ::2, ::2].tolist() == [[4, 4], [4, 4]]


def test_permutations_reproducible_per_seed_and_step_and_leave_global_rng_alone():
    state = torch.random.get_rng_state()
    a = rave_grid.grid_permutation(27, 3, seed=5, step=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, rave_grid.grid_permutation(27, 3, seed=5, step=4))
    assert sorted(a.tolist()) == list(range(27))
    assert not torch.equal(a, rave_grid.grid_permutation(27, 3, seed=5, step=5))
    assert not torch.equal(a, rave_grid.grid_permutation(27, 3, seed=6, step=4))
    assert not torch.equal(rave_grid.grid_permutation(27, 3, 0, 1), rave_grid.grid_permutation(27, 3, 1, 0))
    assert torch.equal(rave_grid.grid_permutation(10, 2, seed=5, step=4, shuffle=False), torch.arange(12))


def test_run_on_grids_chunked_equals_unchunked_and_keeps_none():
    x = torch.randn(11, 2, 4, 4)
    perm = rave_grid.grid_permutation(11, 2, seed=1, step=0)
    calls = []

    def fn(grids, part):
        calls.append(part)
        return [grids * 2 + grids.mean(dim=(1, 2, 3), keepdim=True), None]

    whole = rave_grid.run_on_grids(fn, x, perm, 2, max_grids_per_call=3)
    assert len(calls) == 1 and whole[1] is None
    chunked = rave_grid.run_on_grids(fn, x, perm, 2, max_grids_per_call=1)
    assert len(calls) == 4
    assert torch.equal(chunked[0], whole[0])


def test_chunk_helpers():
    assert chunk_slices(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert rave_grid.largest_fitting(10, lambda k: 3 * k, 20) == 6
    assert rave_grid.largest_fitting(10, lambda k: 3 * k, 18) == 5  # strictly below the budget, as ComfyUI
    assert rave_grid.largest_fitting(10, lambda k: 3 * k, 1) == 1
    with pytest.raises(ValueError):
        rave_grid.grid_permutation(0, 3, 0, 0)


def test_step_index_names_unsupported_samplers():
    sig = torch.tensor([14.6, 5.0, 1.0, 0.0])
    assert schedule.step_index(sig, torch.tensor([5.0, 5.0])) == 1
    with pytest.raises(ValueError, match="heun"):
        schedule.step_index(sig, torch.tensor([3.0]))


def test_mask_to_latent_follows_the_vae_crop_and_modes():
    mask = torch.zeros(2, 20, 35)          # VAE keeps rows 2..17 and columns 1..32
    mask[:, 2, 1] = 1.0                    # top-left pixel of latent cell (0, 0)
    mask[:, 10:18, 25:33] = 0.3            # a faint block at latent cell (1, 3)
    near = masked_cfg.mask_to_latent(mask, 2, 4, "nearest", 0.5)
    assert near.shape == (2, 2, 4) and near[0].tolist() == [[1, 0, 0, 0], [0, 0, 0, 0]]
    area = masked_cfg.mask_to_latent(mask, 2, 4, "area", 0.2)
    assert area[0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 1]]
    assert masked_cfg.mask_to_latent(mask, 2, 4, "area", 0.0)[0].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    assert torch.equal(masked_cfg.mask_to_latent(near, 2, 4), near)
    with pytest.raises(ValueError, match="video's size"):
        masked_cfg.mask_to_latent(mask, 3, 4)


def test_masked_blend_formula():
    guided, uncond = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    m = (torch.rand(3, 2, 2) > 0.5).float()
    out = masked_cfg.masked_cfg_blend(guided, uncond, m)
    assert torch.equal(out, torch.where(m.bool().unsqueeze(1), guided, uncond))
    with pytest.raises(ValueError, match="latent mask"):
        masked_cfg.masked_cfg_blend(guided, uncond, m[:2])
