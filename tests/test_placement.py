"""The test bed's placement metric (bench.quality): in place, elsewhere, not recoloured, on world-rendered edits."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from quality_edit import BG_GROW_PX, CLIP_SEEDS, make_case, placement

from drive_ops.composite.compositing import composite_video


def _rendered(case, shift_px: float = 0.0) -> torch.Tensor:
    """The world's own render of the recolour, the object moved ``shift_px`` toward the frame's roomier side (0: a
    perfect edit)."""
    from testbed import world

    scene = case.clip.scene.replace_object(0, colour=case.new_colour)
    obj = scene.objects[0]
    room = np.array(scene.size[::-1]) / 2 - obj.centres.mean(0)          # (x, y) toward the frame's centre
    axis = int(np.abs(room).argmax())
    step = np.zeros(2)
    step[axis] = np.sign(room[axis]) * shift_px
    moved = dataclasses.replace(obj, centres=obj.centres + step)
    return torch.from_numpy(world.render_clip(dataclasses.replace(scene, objects=(moved,))).frames)


def test_perfect_edits_are_in_place_drifted_ones_elsewhere_untouched_ones_not_recoloured():
    for seed in CLIP_SEEDS[:3]:
        case = make_case(seed)
        frames = len(case.frames)
        for shift, expected in ((0.0, "in place"), (1.5 * case.clip.objects[0].radii.max(), "elsewhere")):
            edited = _rendered(case, shift)
            composited = composite_video(edited, case.frames, case.mask, grow=BG_GROW_PX)
            assert placement(case, composited, edited) == [expected] * frames, (seed, shift)
        assert placement(case, case.frames, case.frames) == ["not recoloured"] * frames
