"""The test bed's exact depth hints (testbed/hints.py) and how the ControlNet's training grids carry them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from drive_ops.diffusion import rave_grid
from testbed import hints, world
from testbed.controlnet import hint_tensor
from testbed.train_controlnet import LATENT_DOWN, split_batch


def test_depth_is_zero_behind_and_brighter_in_front():
    clip = world.make_clip(world.HELDOUT_START + 5, frames=6, n_objects=2, occlusion=True)
    h = hints.clip_hints(clip)
    assert h.shape == clip.frames.shape and h.dtype == np.float32
    assert np.array_equal(h[..., 0], h[..., 1]) and np.array_equal(h[..., 0], h[..., 2])
    grey = h[..., 0]
    assert np.all(grey[clip.alphas.sum(0) == 0] == 0.0)
    back, front = clip.alphas[0] == 1.0, clip.alphas[1] == 1.0
    assert np.allclose(grey[front], hints.LAYER_DEPTH[0]) and np.allclose(grey[back], hints.LAYER_DEPTH[1])
    assert back.any() and front.any()


def test_single_images_and_clips_give_the_same_hints():
    clip = world.make_clip(world.HELDOUT_START + 7, frames=16)
    assert np.array_equal(hints.frames_hints(clip.scene, range(16)), hints.clip_hints(clip))
    frame = world.sample_image(123)
    hint = hints.frame_hint(frame.scene, frame.t)
    _, cover = world.render_frame(frame.scene, frame.t)
    assert np.array_equal(hint, hints.depth_hint(world.visible_coverage(cover)))
    assert np.all(hint[frame.masks.any(0)] > 0)


def test_a_recolour_keeps_the_hints():
    clip = world.make_clip(world.HELDOUT_START + 3, frames=4, n_objects=1)
    recoloured = world.render_clip(clip.scene.replace_object(0, colour="green" if clip.objects[0].colour != "green"
                                                                 else "red"))
    assert np.array_equal(hints.clip_hints(recoloured), hints.clip_hints(clip))


def test_training_grids_tile_the_hints_with_the_latents():
    """The pool carries each frame's hint as pixel-unshuffled channels, so tiling the pool tiles both alike."""
    _, scene, times = world.sample_frames(42, 4)
    hint = hint_tensor(hints.frames_hints(scene, times))                  # [4,3,64,64]
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    packed = torch.cat([latents, F.pixel_unshuffle(hint, LATENT_DOWN)], dim=1)
    order = torch.tensor([2, 0, 3, 1])
    z, h = split_batch(rave_grid.tile(packed[order], 2))
    assert torch.equal(z, rave_grid.tile(latents[order], 2))
    assert torch.equal(h, rave_grid.tile(hint[order], 2))
