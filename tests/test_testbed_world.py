"""The synthetic world, its vocabulary and the judge (no trained weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testbed import judge, vocab, world


def test_clip_is_deterministic_and_shaped():
    a = world.make_clip(world.HELDOUT_START + 5, frames=12, size=(64, 96), n_objects=2)
    b = world.make_clip(world.HELDOUT_START + 5, frames=12, size=(64, 96), n_objects=2)
    assert np.array_equal(a.frames, b.frames) and a.caption == b.caption
    assert a.frames.shape == (12, 64, 96, 3) and a.frames.dtype == np.float32
    assert 0.0 <= a.frames.min() and a.frames.max() <= 1.0
    assert a.masks.shape == a.alphas.shape == a.amodal.shape == (2, 12, 64, 96)
    assert a.union.shape == (12, 64, 96) and a.flow.shape == (11, 64, 96, 2)
    assert a.velocities.shape == (2, 11, 2)
    assert not np.array_equal(a.frames, world.make_clip(world.HELDOUT_START + 6, frames=12, size=(64, 96)).frames)


@pytest.mark.parametrize("size", [64, 128])
def test_sizes_scale_with_the_frame(size):
    radii = [o.radii for s in world.heldout_seeds(20) for o in world.sample_scene(s, 8, size).objects]
    r = np.concatenate(radii) * 64 / size
    assert r.min() >= world.RADIUS_RANGE[0] * world.SCALE_CHANGE[0] - 1e-6
    assert r.max() <= world.RADIUS_RANGE[1] + 1e-6


def test_caption_names_what_is_drawn():
    clip = world.make_clip(world.HELDOUT_START + 1, frames=8, n_objects=2, occlusion=False)
    parts = vocab.parse_caption(clip.caption)
    assert parts.objects == tuple((o.colour, o.shape) for o in clip.objects)
    assert parts.background == (clip.scene.background.colour, clip.scene.background.texture)
    for k, obj in enumerate(clip.objects):
        t = int(clip.masks[k].reshape(clip.frames.shape[0], -1).sum(1).argmax())
        pixels = clip.frames[t][clip.alphas[k, t] == 1.0]
        assert len(pixels) > 50
        assert np.allclose(pixels, world.OBJECT_COLOURS[obj.colour], atol=1e-5)


def test_objects_never_share_a_colour_with_the_background_or_each_other():
    for s in world.heldout_seeds(200):
        scene = world.sample_scene(s, 2)
        colours = [o.colour for o in scene.objects]
        assert len(set(colours)) == len(colours) and scene.background.colour not in colours


def test_masks_are_exact_and_occlusion_hides_the_back_object():
    clip = world.make_clip(world.HELDOUT_START + 3, frames=16, n_objects=2, occlusion=True)
    back, front = clip.objects
    # the front object's mask is its whole silhouette; the back one loses what the front covers
    assert np.array_equal(clip.masks[1], clip.amodal[1])
    hidden = clip.amodal[0] & ~clip.masks[0]
    assert hidden.any() and np.all(clip.alphas[1][hidden] > 0) and clip.masks[1][hidden].mean() > 0.9
    assert not (clip.masks[0] & clip.masks[1]).any()
    # the masks are the coverage the renderer composited with
    t = 5
    cover = world.shape_coverage(front.shape, *front.centres[t], front.radii[t], 64, 64)
    assert np.allclose(clip.alphas[1, t], cover)


def test_crossing_objects_meet():
    for s in world.heldout_seeds(10):
        clip = world.make_clip(s, frames=16, n_objects=2, occlusion=True)
        assert (clip.amodal[0] & clip.amodal[1]).any(axis=(1, 2)).any()


def test_flow_moves_object_pixels_onto_the_object():
    clip = world.make_clip(world.HELDOUT_START + 8, frames=10, n_objects=1)
    obj = clip.objects[0]
    assert np.allclose(obj.velocities, obj.velocities[0])  # constant velocity
    for t in range(9):
        ys, xs = np.nonzero(clip.masks[0, t])
        fx, fy = clip.flow[t, ys, xs, 0], clip.flow[t, ys, xs, 1]
        # a pixel centre moved by the flow lands at the same relative place of the next frame's shape
        x1, y1 = xs + 0.5 + fx, ys + 0.5 + fy
        rel0 = (np.stack([xs + 0.5, ys + 0.5], 1) - obj.centres[t]) / obj.radii[t]
        rel1 = (np.stack([x1, y1], 1) - obj.centres[t + 1]) / obj.radii[t + 1]
        assert np.allclose(rel0, rel1, atol=1e-4)
        assert np.all(clip.flow[t][~clip.union[t]] == 0)


def test_replace_object_keeps_the_motion():
    scene = world.sample_scene(world.HELDOUT_START + 2, 8, n_objects=1)
    new_colour = next(c for c in world.OBJECT_COLOURS if c not in (scene.objects[0].colour, scene.background.colour))
    edited = world.render_clip(scene.replace_object(0, colour=new_colour))
    original = world.render_clip(scene)
    assert np.array_equal(edited.masks, original.masks)
    untouched = original.alphas.sum(axis=0) == 0
    assert np.array_equal(edited.frames[untouched], original.frames[untouched])
    assert not np.array_equal(edited.frames[original.union], original.frames[original.union])
    assert edited.caption == scene.caption.replace(scene.objects[0].colour, new_colour, 1)


def test_training_pool_frames_are_the_clips_frames():
    frames, scene, times = world.sample_frames(11, count=4)
    again, _, times_again = world.sample_frames(11, count=4)
    assert np.array_equal(frames, again) and times == times_again
    assert frames.shape == (4, 64, 64, 3) and len(set(times)) == 4 and times == sorted(times)
    clip = world.render_clip(scene)
    assert clip.frames.shape[0] == world.TRAIN_CLIP_FRAMES
    assert np.array_equal(frames, clip.frames[times])


def test_train_and_heldout_seeds_are_disjoint():
    assert min(world.heldout_seeds(3)) == world.HELDOUT_START
    img = world.sample_image(7)
    assert img.image.shape == (64, 64, 3) and img.masks.shape[1:] == (64, 64)
    frames, captions = world.image_batch([1, 2, 3])
    assert frames.shape == (3, 64, 64, 3) and len(captions) == 3


def test_tokenizer():
    tok = vocab.tokenize(["a red ball on a blue striped background", ""])
    assert tok.shape == (2, vocab.MAX_TOKENS) and tok.dtype == torch.long
    assert tok[0, 0] == vocab.BOS and tok[0, 9] == vocab.EOS and tok[0, 10:].eq(vocab.PAD).all()
    assert tok[1, :2].tolist() == [vocab.BOS, vocab.EOS]
    assert vocab.eos_positions(tok).tolist() == [9, 1]
    with pytest.raises(ValueError, match="outside the testbed vocabulary"):
        vocab.tokenize("a silver robotic wolf")
    assert vocab.parse_caption("a red ball").background is None
    with pytest.raises(ValueError):
        vocab.parse_caption("a ball red on a blue striped background")


def test_judge_on_true_frames():
    """The judge is right on ground truth: every held-out single-object frame's colour and shape."""
    colour_ok = shape_ok = 0
    n = 60
    for s in world.heldout_seeds(n):
        f = world.sample_image(s, 64, n_objects=1)
        v = judge.judge_caption(f.image, f.caption)
        colour_ok += v.colour_ok
        shape_ok += v.shape_ok
        assert judge.colour_in_mask(f.image, f.masks[0]).colour == f.scene.objects[0].colour
        assert judge.colour_fraction(f.image, f.masks[0], f.scene.objects[0].colour) > 0.95
    assert colour_ok == n and shape_ok == n


def test_judge_finds_nothing_on_a_bare_background():
    scene = world.sample_scene(world.HELDOUT_START, 1)
    bg = world.render_background(scene.background, 64, 64)
    v = judge.judge_image(bg, scene.background.colour, "red", "ball")
    assert not v.found and not v.colour_ok


def test_judge_tells_shapes_apart():
    for shape in world.SHAPES:
        mask = world.shape_coverage(shape, 30.3, 33.1, 12.0, 64, 64) >= 0.5
        assert judge.classify_shape(mask)[0] == shape
