"""The nodes' input checks that need a node's voice: masks clamped to 0..1 with a logged note.

The checks themselves are ``drive_ops.core.validate`` (finite IMAGE / LATENT / MASK,
finite numbers); this adds what only a node can do, telling the user in ComfyUI's
console which node changed its input and why.
"""

from __future__ import annotations

import logging

import torch

from ..drive_ops.core.validate import check_mask, unit_range_mask

_LOG = logging.getLogger(__name__)


def blend_mask(mask: torch.Tensor, node: str, what: str = "the mask input") -> torch.Tensor:
    """A finite MASK for blending, clamped to 0..1 (values outside would extrapolate the blend), with a note."""
    check_mask(mask, what)
    mask, note = unit_range_mask(mask, what)
    if note:
        _LOG.warning("%s: %s", node, note)
    return mask
