"""Harmonisation cases on the test-bed world, shared by tests/test_quality_harmonize.py and bench/harmonize_fallback.py.

- perfect edits: a held-out one-object clip recoloured by the world itself (the scene re-rendered with the
  object in another palette colour, never the background's), with the object's exact mask: nothing to fix;
- casts: six held-out clips with the pack's white-box filters (temperature 0.6, brightness 0.3) applied
  inside the object's mask; the reference is the clip before the cast.
All 8 frames at 64 px; the number is the mean CIE76 Delta E over the object's pixels.
"""

from __future__ import annotations

import torch

from drive_ops.composite.color_filters import apply_filters

PERFECT_EDIT_OFFSET = 100                 # held-out seeds HELDOUT_START + 100 + i
CAST_SEEDS = (21, 22, 23, 24, 25, 26)     # held-out seeds HELDOUT_START + s
CAST = (0.6, 0.3, 0.0, 0.0, 0.0, 0.0)     # temperature, brightness, contrast, saturation, highlight, shadow
FRAMES = 8


def delta_e(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean CIE76 Delta E over ``mask`` of two IMAGE batches ``[T,H,W,3]``."""
    from kornia.color import rgb_to_lab

    d = ((rgb_to_lab(a.movedim(-1, 1)) - rgb_to_lab(b.movedim(-1, 1))) ** 2).sum(1).sqrt()
    return float(d[mask > 0.5].mean())


def perfect_edits(n: int) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """``n`` (recoloured frames [T,H,W,3], object mask [T,H,W], "old -> new colour on background")."""
    from testbed import world

    palette = sorted(world.OBJECT_COLOURS)
    out = []
    for i in range(n):
        clip = world.make_clip(world.HELDOUT_START + PERFECT_EDIT_OFFSET + i, frames=FRAMES, n_objects=1)
        scene = clip.scene
        old = scene.objects[0].colour
        choices = [c for c in palette if c not in (old, scene.background.colour)]
        new = choices[i % len(choices)]
        edited = world.render_clip(scene.replace_object(0, colour=new))
        out.append((torch.from_numpy(edited.frames), torch.from_numpy(clip.masks[0]).float(),
                    f"{old} -> {new} on {scene.background.colour}"))
    return out


def cast_clips() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(reference frames, object mask, frames with the cast inside the mask) per seed of ``CAST_SEEDS``."""
    from testbed import world

    out = []
    for seed in CAST_SEEDS:
        clip = world.make_clip(world.HELDOUT_START + seed, frames=FRAMES, n_objects=1)
        ref, mask = torch.from_numpy(clip.frames), torch.from_numpy(clip.masks[0]).float()
        args = torch.tensor([CAST]).expand(FRAMES, 6)
        cast = apply_filters(ref.movedim(-1, 1), mask[:, None], args).movedim(1, -1)
        out.append((ref, mask, cast))
    return out
