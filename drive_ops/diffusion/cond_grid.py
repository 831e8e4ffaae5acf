"""Conditioning under the RAVE grid, without ComfyUI: ControlNet chains, conditioning masks, copies.

ComfyUI hands a sampler's conditioning around as lists of ``[tensor, options]`` entries
(and, inside the model call, as the dicts of those options). Under the grid shuffle every
per-frame input must follow the latents into the same grids: the ControlNet hints and the
conditioning masks are tiled with the step's permutation, then cut to the grids of each
UNet call. These helpers only read attributes and keys (``control``,
``previous_controlnet``, ``mask``, ``area``, ``copy``), so they work on ComfyUI's objects
and on the stand-ins of the unit tests alike; the ComfyUI-specific part (preparing a hint
as the ControlNet would) stays in ``nodes/patches/grid_wrapper.py``.
"""

from __future__ import annotations

import torch

from ..core.mask_frames import match_mask_frames
from .rave_grid import compose_grids


def control_chain(conds: list) -> list:
    """Every ControlNet reachable from the cond entries (each once, ``previous_controlnet`` included)."""
    found: dict[int, object] = {}
    for cond in conds:
        for entry in cond or ():
            control = entry.get("control")
            while control is not None:
                found.setdefault(id(control), control)
                control = control.previous_controlnet
    return list(found.values())


def grid_cond_masks(conds: list, perm: torch.Tensor, grid_size: int, frames: int) -> list:
    """Per cond entry: its conditioning mask as grids ``[n, g*h, g*w]`` in slot order ``perm`` (None where it has none)."""
    out = []
    for cond in conds:
        masks = []
        for entry in cond or ():
            if "area" in entry:
                raise ValueError("area conditioning cannot follow the DRIVE grid shuffle; use masks "
                                 "(ConditioningSetMask) or grid_size 1 without shuffle")
            mask = entry.get("mask")
            if mask is None:
                masks.append(None)
                continue
            mask = match_mask_frames(mask, frames, what="conditioning mask")
            masks.append(compose_grids(mask.unsqueeze(1), perm, grid_size).squeeze(1))
        out.append(masks)
    return out


def conds_for_chunk(conds: list, grid_masks: list, part: slice) -> list:
    """Copies of the cond entries whose masks are cut to the grids in ``part`` (the inputs stay untouched)."""
    out = []
    for cond, masks in zip(conds, grid_masks):
        if cond is None:
            out.append(None)
            continue
        entries = []
        for entry, mask in zip(cond, masks):
            if mask is not None:
                entry = dict(entry)
                entry["mask"] = mask[part]
            entries.append(entry)
        out.append(entries)
    return out


def copy_conditioning(conditioning: list, memo: dict) -> list:
    """Conditioning with fresh option dicts and ControlNet copies (chains kept; shared objects stay shared).

    The grid wrapper swaps each ControlNet's hint for gridded ones during a step; working
    on copies keeps the user's CONDITIONING and ControlNets exactly as they were, also
    when a run is cancelled. ``memo`` maps ``id(original) -> copy`` across several lists.
    """
    def copy_control(control):
        if control is None:
            return None
        if id(control) not in memo:
            clone = control.copy()
            clone.set_previous_controlnet(copy_control(control.previous_controlnet))
            memo[id(control)] = clone
        return memo[id(control)]

    out = []
    for tensor, options in conditioning:
        options = dict(options)
        if options.get("control") is not None:
            options["control"] = copy_control(options["control"])
        out.append([tensor, options])
    return out
