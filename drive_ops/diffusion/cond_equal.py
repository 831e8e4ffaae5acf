"""Do two CONDITIONING lists condition the model the same way? (So a sampler can skip a duplicate pass.)

A graph easily makes equal conditioning twice: two CLIP Text Encode nodes with the same text, or
the same text through two Apply ControlNet nodes with the same ControlNet, hint and strength. The
results are distinct objects with the same content, and a sampler that only checks identity runs
the UNet once more per step for a prediction it already has.

Equal means: the same entries in the same order, tensors equal (shape, dtype, device, values),
option dicts with the same keys and equal values, and ControlNets (anything with
``previous_controlnet``) equal attribute by attribute along the whole chain. Every other object
(a model, a VAE, hooks, a function) must be the very same object. When in doubt the answer is
"not equal", which only costs the extra pass.
"""

from __future__ import annotations

import enum

import torch

_PLAIN = (bool, int, float, complex, str, bytes, type(None), enum.Enum, torch.dtype, torch.device)
_MAX_DEPTH = 32


def conditioning_equal(a: list, b: list) -> bool:
    """True when the CONDITIONING lists ``a`` and ``b`` (``[[tensor, options], ...]``) are interchangeable."""
    return _same(a, b, 0)


def _same(a, b, depth: int) -> bool:
    if a is b:
        return True
    if depth > _MAX_DEPTH or type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and bool(torch.equal(a, b))
    if isinstance(a, _PLAIN):
        return a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth + 1) for k in a)
    if hasattr(a, "previous_controlnet") and hasattr(a, "__dict__"):
        return _same(vars(a), vars(b), depth + 1)
    return False
