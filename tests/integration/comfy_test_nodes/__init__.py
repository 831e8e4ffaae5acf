"""Nodes only the integration tests' ComfyUI loads (tests/integration/comfy_test_server.py links this folder in).

Wan's text encoder (umt5-xxl, 11 GB) cannot be stood in on a CPU: the tests swap its CLIP Text Encode nodes for
Test Text Conditioning, which makes a CONDITIONING of the shape umt5-xxl gives (tokens x 4096), seeded.
"""

from __future__ import annotations

import torch


class TestTextConditioning:
    """A seeded random text conditioning of a text encoder's shape, for models whose encoder is too large to test."""

    DESCRIPTION = "TESTS ONLY: seeded random text embeddings [1, tokens, width] as a CONDITIONING."
    CATEGORY = "testing"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "tokens": ("INT", {"default": 8, "min": 1, "max": 512, "tooltip": "Sequence length."}),
            "width": ("INT", {"default": 4096, "min": 1, "max": 8192, "tooltip": "Embedding width (umt5-xxl: 4096)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "Seed of the embeddings."}),
        }}

    def make(self, tokens: int, width: int, seed: int):
        gen = torch.Generator().manual_seed(seed)
        return ([[torch.randn(1, tokens, width, generator=gen), {}]],)


NODE_CLASS_MAPPINGS = {"TestTextConditioning": TestTextConditioning}
