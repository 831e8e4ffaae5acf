"""The main workflow's masks (issue 24, item 2), read from its API twin and run through the pack's own ops.

The sampler must edit every latent cell an object pixel lies in: with nearest sampling, or a mask grown by a
fixed 8 px, some object pixels fell outside the latent mask and were resampled unguided (bench/sampler_mask.py:
nearest 32 % of a 64 px clip's object pixels, 5 % at 512 px, 26 % of a 30 px object; grown 8 px 0.39 / 0.01 /
0.10 %); it reads the tracked mask with area, threshold 0. Composite and Harmonize take the same mask feathered
about its edge by a second Mask Tools: alpha about 0.5 on the edge, nothing changed farther than the feather, the
object's inside kept whole.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drive_ops.composite.compositing import composite_alpha
from drive_ops.diffusion.masked_cfg import mask_to_latent
from drive_ops.masks.mask_ops import refine_mask

API = Path(__file__).resolve().parent / "workflows" / "drive_instance_edit.api.json"


def _nodes() -> tuple[dict, dict, dict, dict, dict]:
    """(Mask Tools feeding the sampler, the one feeding the composite, the sampler, Composite Background, Harmonize)
    inputs of the API twin."""
    prompt = json.loads(API.read_text())
    kind = {n["class_type"]: n for n in prompt.values()}
    sampler, composite, harmonize = (kind[k]["inputs"] for k in ("DRIVE_MaskedCFGSampler", "DRIVE_CompositeBackground",
                                                                  "DRIVE_Harmonize"))
    tools, feather = prompt[sampler["mask"][0]], prompt[composite["mask"][0]]
    assert tools["class_type"] == feather["class_type"] == "DRIVE_MaskTools"
    assert feather["inputs"]["mask"] == sampler["mask"], "the composite's mask is not the sampler's, feathered"
    return tools["inputs"], feather["inputs"], sampler, composite, harmonize


def _mask_tools(mask: torch.Tensor, p: dict) -> torch.Tensor:
    return refine_mask(mask, p["threshold"] or None, p["fill_holes"], p["min_island_px"], p["temporal_radius"],
                       p["grow_px"], p["feather_px"], p["invert"])


def _world_masks() -> dict[str, list[torch.Tensor]]:
    """Object masks [T,H,W] of held-out clips: 64 px, 512 px, and 30 px / 12 px objects at 512 px."""
    from testbed import world

    out: dict[str, list[torch.Tensor]] = {"64 px": [], "512 px": [], "30 px object": [], "12 px object": []}
    for seed in world.heldout_seeds(4, offset=300):
        out["64 px"].append(torch.from_numpy(world.make_clip(seed, frames=3, size=64, n_objects=1).masks[0]).float())
        scene = world.sample_scene(seed, frames=3, size=512, n_objects=1)
        out["512 px"].append(torch.from_numpy(world.render_clip(scene).masks[0]).float())
        for name, radius in (("30 px object", 15.0), ("12 px object", 6.0)):
            small = dataclasses.replace(scene.objects[0], radii=np.full(3, radius))
            clip = world.render_clip(dataclasses.replace(scene, objects=(small,)))
            out[name].append(torch.from_numpy(clip.masks[0]).float())
    return out


@pytest.fixture(scope="module")
def world_masks():
    return _world_masks()


def test_no_object_pixel_lies_outside_the_samplers_latent_mask(world_masks):
    tools, _, sampler, _, _ = _nodes()
    for name, masks in world_masks.items():
        for mask in masks:
            latent = mask_to_latent(_mask_tools(mask, tools), mask.shape[-2] // 8, mask.shape[-1] // 8,
                                    sampler["mask_mode"], sampler["mask_threshold"])
            cells = latent.repeat_interleave(8, -2).repeat_interleave(8, -1) > 0
            missed = int(((mask > 0.5) & ~cells).sum())
            assert missed == 0, f"{name}: {missed} object pixels outside the sampler's latent mask"


def test_composite_and_harmonize_get_the_tracked_mask_feathered_about_its_edge(world_masks):
    tools, feather, sampler, composite, harmonize = _nodes()
    assert composite["mask"] == harmonize["mask"]
    assert tools["grow_px"] == feather["grow_px"] == 0 and tools["feather_px"] == 0 and feather["feather_px"] > 0
    reach = round(feather["feather_px"])
    for mask in world_masks["512 px"]:
        soft = _mask_tools(_mask_tools(mask, tools), feather)
        alpha, region = composite_alpha(soft, composite["grow"], composite["feather"])
        near = F.max_pool2d(mask[:, None], 2 * reach + 1, 1, reach)[:, 0] > 0
        deep = -F.max_pool2d(-mask[:, None], 2 * reach + 1, 1, reach)[:, 0] > 0
        assert not bool((region & ~near).any()), "the composite reaches beyond the feather"
        assert bool((alpha[deep] == 1).all()), "the object's inside is not kept whole"
        inner_edge = (mask > 0) & (-F.max_pool2d(-mask[:, None], 3, 1, 1)[:, 0] == 0)
        outer_edge = (mask == 0) & (F.max_pool2d(mask[:, None], 3, 1, 1)[:, 0] > 0)
        centre = 0.5 * (float(alpha[inner_edge].mean()) + float(alpha[outer_edge].mean()))
        assert abs(centre - 0.5) < 0.05, f"the feather is not centred on the edge ({centre:.3f})"
