"""Fill Background on synthetic clips whose background is known: recovered where some frame shows it,
reported and filled where none does, untouched outside the mask, steady over time."""

from __future__ import annotations

import functools

import pytest
import torch

from drive_ops.composite.fill_background import fill_background, inpaint_opencv
from drive_ops.core.optical_flow import dis_flow, occlusion_mask, warp_backward
from fill_scenes import make_scene

SCENES = {
    "pan": dict(camera=(0.7, 0.35)),
    "pan_back": dict(camera=(-1.2, 0.8)),
    "leaves_frame": dict(start=(20.0, 40.0), velocity=(-2.0, 0.3)),
    "static_camera": dict(camera=(0.0, 0.0)),
}


@functools.lru_cache(maxsize=None)
def _filled(name: str):
    scene = make_scene(**SCENES[name])
    frames = scene.frames.clone()
    out, unrecovered = fill_background(scene.frames, scene.masks, grow=0)
    assert torch.equal(scene.frames, frames), "the input was mutated"
    return scene, out, unrecovered


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a - b).pow(2).mean()))


@pytest.mark.parametrize("name", SCENES)
def test_background_some_frame_shows_is_recovered(name):
    scene, out, _ = _filled(name)
    shown = (scene.masks > 0.5) & ~scene.unseen
    assert shown.sum() > 500
    # measured 45.7 (pan_back) to 97 dB (static camera)
    assert _psnr(out[shown], scene.background[shown]) >= 35.0


@pytest.mark.parametrize("name", SCENES)
def test_outside_the_mask_every_pixel_is_the_input(name):
    scene, out, unrecovered = _filled(name)
    outside = scene.masks <= 0.5
    assert torch.equal(out[outside], scene.frames[outside])
    assert not unrecovered[outside].any()


@pytest.mark.parametrize("name", ["pan", "pan_back", "leaves_frame", "static_camera"])
def test_what_no_frame_shows_is_reported_and_filled(name):
    scene, out, unrecovered = _filled(name)
    reported, truth = unrecovered > 0.5, scene.unseen
    assert truth.sum() > 300
    iou = float((reported & truth).sum() / (reported | truth).sum())
    missed = float((truth & ~reported).sum() / truth.sum())
    assert iou >= 0.85 and missed <= 0.05, (iou, missed)      # measured IoU 0.91-1.0, missed <= 2 %
    hole = scene.masks > 0.5
    assert torch.isfinite(out).all()
    # no red object pixel is left: the fill is no redder than the background ever is
    redness = out[..., 0] - out[..., 1]
    assert redness[hole].max() <= (scene.background[..., 0] - scene.background[..., 1]).max() + 0.05
    # invented, but from the surrounding background: measured mean error 0.02-0.06
    assert (out - scene.background)[truth].abs().mean() < 0.1


def _warp_mse(clip: torch.Tensor, background: torch.Tensor, region: torch.Tensor) -> float:
    """Mean squared change of ``clip`` between frames along the true background's flow, inside ``region``."""
    errors = []
    for t in range(clip.shape[0] - 1):
        back = dis_flow(background[t + 1], background[t], "fine")
        ok = region[t + 1] & ~occlusion_mask(back, dis_flow(background[t], background[t + 1], "fine"))
        if ok.any():
            errors.append((warp_backward(clip[t], back) - clip[t + 1]).pow(2).mean(-1)[ok].mean())
    return float(torch.stack(errors).mean())


@pytest.mark.parametrize("name", ["pan", "pan_back"])
def test_the_fill_moves_with_the_background(name):
    scene, out, _ = _filled(name)
    hole = scene.masks > 0.5
    own = _warp_mse(scene.background, scene.background, hole)
    filled = _warp_mse(out, scene.background, hole)
    per_frame = torch.stack([inpaint_opencv(f, m > 0.5) for f, m in zip(scene.frames, scene.masks)])
    # measured: background 4e-7, fill 1.1e-5 to 1.9e-5, per-frame OpenCV inpainting 4.8e-4
    assert filled <= own + 5e-5
    assert filled <= 0.1 * _warp_mse(per_frame, scene.background, hole)


def test_a_static_camera_keeps_the_invented_fill_identical_in_every_frame():
    scene, out, unrecovered = _filled("static_camera")
    unseen = unrecovered[0] > 0.5
    assert torch.equal(unrecovered, unrecovered[:1].expand_as(unrecovered))
    for t in range(1, out.shape[0]):
        assert torch.allclose(out[t][unseen], out[0][unseen], atol=1e-3)   # DIS finds 0.01 px of motion


def test_the_keyframe_fill_gets_the_unseen_area_of_the_chosen_frame():
    scene = make_scene(frames=8, **SCENES["pan"], with_truth=False)
    calls = []

    def grey(frame, hole, index):
        calls.append((index, hole.clone()))
        return torch.where(hole[..., None], torch.full_like(frame, 0.5), frame)

    out, unrecovered = fill_background(scene.frames, scene.masks, grow=0, keyframe_fill=grey)
    areas = unrecovered.flatten(1).sum(1)
    assert calls[0][0] == int(areas.argmax())
    assert torch.equal(calls[0][1], unrecovered[calls[0][0]] > 0.5)
    k = calls[0][0]
    assert torch.equal(out[k][unrecovered[k] > 0.5], torch.full_like(out[k][unrecovered[k] > 0.5], 0.5))
    # carried, not re-invented: the other frames' unseen areas hold the keyframe's grey
    others = [t for t in range(out.shape[0]) if t != k]
    # measured 0.93: the rest lie on the grey area's rim, where the sample mixes in real background
    assert ((out[others] - 0.5).abs()[unrecovered[others] > 0.5] < 0.02).float().mean() > 0.9
    calls.clear()
    fill_background(scene.frames, scene.masks, grow=0, keyframe=2, keyframe_fill=grey)
    assert calls[0][0] == 2


def test_grow_widens_the_hole_and_nothing_else():
    scene = make_scene(frames=4, with_truth=False)
    out, _ = fill_background(scene.frames, scene.masks, grow=3)
    from drive_ops.core.mask_morphology import grow_mask

    outside = grow_mask(scene.masks, 3) <= 0.5
    assert torch.equal(out[outside], scene.frames[outside])
    ring = (grow_mask(scene.masks, 3) > 0.5) & (scene.masks <= 0.5)
    assert not torch.equal(out[ring], scene.frames[ring])


def test_a_single_image_is_inpainted():
    scene = make_scene(frames=1, with_truth=False)
    out, unrecovered = fill_background(scene.frames, scene.masks[0], grow=0)
    assert torch.equal(unrecovered, scene.masks)
    assert torch.allclose(out[0], inpaint_opencv(scene.frames[0], scene.masks[0] > 0.5))


def test_progress_rises_to_its_total():
    scene = make_scene(frames=5, with_truth=False)
    seen = []
    fill_background(scene.frames, scene.masks, progress=lambda done, total: seen.append((done, total)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1] == 15


@pytest.mark.parametrize("mask,kwargs,text", [
    (torch.zeros(3, 96, 128), {}, "nothing to remove"),
    (torch.ones(3, 96, 128), {}, "every pixel of every frame"),
    (torch.ones(2, 96, 128), {}, "has 2 frames but the video has 3"),
    (torch.ones(3, 48, 64), {}, "is 64x48 px but the frames are 128x96"),
    (None, {"keyframe": 3}, "keyframe 3 is outside the clip: use 0..2"),
    (None, {"grow": -1}, "grow must be between 0 and 256"),
])
def test_bad_input_names_the_fix(mask, kwargs, text):
    scene = make_scene(frames=3, with_truth=False)
    with pytest.raises(ValueError, match=text):
        fill_background(scene.frames, scene.masks if mask is None else mask, **kwargs)


def test_inpaint_opencv_changes_only_the_hole():
    scene = make_scene(frames=1, with_truth=False)
    hole = scene.masks[0] > 0.5
    for method in ("telea", "ns"):
        out = inpaint_opencv(scene.frames[0], hole, method)
        assert torch.equal(out[~hole], scene.frames[0][~hole])
        assert (out[hole][:, 0] - out[hole][:, 1]).max() < 0.5       # the red disc is gone
    with pytest.raises(ValueError, match="choose one of telea, ns"):
        inpaint_opencv(scene.frames[0], hole, "magic")
