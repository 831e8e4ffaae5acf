"""Conditioning under the grid: ControlNet chains, gridded conditioning masks, per-chunk cuts, copies."""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion import cond_grid, rave_grid


class FakeControl:
    """The ControlNet attributes the helpers use: a chain, copy() and set_previous_controlnet()."""

    def __init__(self, name: str, previous: FakeControl | None = None):
        self.name, self.previous_controlnet = name, previous

    def copy(self) -> FakeControl:
        return FakeControl(self.name + "'")

    def set_previous_controlnet(self, previous: FakeControl | None) -> None:
        self.previous_controlnet = previous


def test_control_chain_lists_each_control_once():
    base = FakeControl("depth")
    top = FakeControl("canny", base)
    conds = [[{"control": top}, {"control": base}], None, [{}, {"control": top}]]
    assert [c.name for c in cond_grid.control_chain(conds)] == ["canny", "depth"]
    assert cond_grid.control_chain([None, []]) == []


def test_cond_masks_follow_the_latent_grids_and_chunks():
    frames, g = 5, 2
    perm = rave_grid.grid_permutation(frames, g, seed=3, step=1)
    mask = torch.rand(frames, 4, 6, generator=torch.Generator().manual_seed(0))
    conds = [[{"mask": mask}, {}], None, [{"mask": mask[:1]}]]
    grids = cond_grid.grid_cond_masks(conds, perm, g, frames)
    expected = rave_grid.compose_grids(mask.unsqueeze(1), perm, g).squeeze(1)
    assert torch.equal(grids[0][0], expected) and grids[0][1] is None and grids[1] == []
    assert torch.equal(grids[2][0], rave_grid.compose_grids(mask[:1].expand(frames, -1, -1).unsqueeze(1), perm,
                                                           g).squeeze(1))
    part = slice(1, 2)
    chunk = cond_grid.conds_for_chunk(conds, grids, part)
    assert torch.equal(chunk[0][0]["mask"], expected[part]) and chunk[0][1] is conds[0][1] and chunk[1] is None
    assert conds[0][0]["mask"] is mask, "the caller's cond entries must stay untouched"
    with pytest.raises(ValueError, match="area conditioning"):
        cond_grid.grid_cond_masks([[{"area": (8, 8, 0, 0)}]], perm, g, frames)
    with pytest.raises(ValueError, match="3 frames but the video has 5"):
        cond_grid.grid_cond_masks([[{"mask": mask[:3]}]], perm, g, frames)


def test_copy_conditioning_copies_controls_once_and_keeps_the_inputs():
    base = FakeControl("depth")
    top = FakeControl("canny", base)
    positive = [[torch.zeros(1), {"control": top, "strength": 1.0}]]
    negative = [[torch.ones(1), {"control": top}], [torch.ones(1), {}]]
    memo: dict = {}
    pos, neg = cond_grid.copy_conditioning(positive, memo), cond_grid.copy_conditioning(negative, memo)
    assert pos[0][1]["control"] is neg[0][1]["control"], "a control shared by both lists stays shared"
    copied = pos[0][1]["control"]
    assert copied is not top and copied.name == "canny'" and copied.previous_controlnet.name == "depth'"
    assert positive[0][1]["control"] is top and top.previous_controlnet is base
    assert pos[0][0] is positive[0][0] and pos[0][1] is not positive[0][1] and neg[1][1] == {}
