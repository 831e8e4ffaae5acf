"""The closed vocabulary of the world's captions and a word-level tokenizer over it.

Every caption is at most 12 words (``"a red ball and a green star on a gray checkered
background"``); token ids are ``[<bos>, words..., <eos>, <pad>...]`` padded to
:data:`MAX_TOKENS`. The empty string is the unconditional prompt (``[<bos>, <eos>, <pad>...]``),
the one classifier-free guidance uses as its negative.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .world import BACKGROUND_COLOURS, OBJECT_COLOURS, SHAPES, TEXTURES

SPECIAL = ("<pad>", "<bos>", "<eos>")
GLUE = ("a", "and", "on", "background")
WORDS: tuple[str, ...] = GLUE + tuple(OBJECT_COLOURS) + tuple(
    c for c in BACKGROUND_COLOURS if c not in OBJECT_COLOURS) + SHAPES + TEXTURES
VOCAB: tuple[str, ...] = SPECIAL + WORDS
TOKEN_IDS: dict[str, int] = {w: i for i, w in enumerate(VOCAB)}
PAD, BOS, EOS = 0, 1, 2
MAX_TOKENS = 16


def words(caption: str) -> list[str]:
    """Lower-cased words of ``caption``, punctuation dropped."""
    return re.findall(r"[a-z<>]+", caption.lower())


def tokenize(captions: str | list[str]) -> torch.Tensor:
    """Token ids ``[B, MAX_TOKENS]`` (int64); raises ``ValueError`` on a word outside :data:`VOCAB`."""
    if isinstance(captions, str):
        captions = [captions]
    out = torch.full((len(captions), MAX_TOKENS), PAD, dtype=torch.long)
    for b, caption in enumerate(captions):
        ws = words(caption)
        unknown = [w for w in ws if w not in TOKEN_IDS or w in SPECIAL]
        if unknown:
            raise ValueError(f"caption {caption!r} has words outside the testbed vocabulary: {unknown}; "
                             f"known words: {' '.join(WORDS)}")
        if len(ws) > MAX_TOKENS - 2:
            raise ValueError(f"caption {caption!r} has {len(ws)} words; at most {MAX_TOKENS - 2} fit")
        ids = [BOS] + [TOKEN_IDS[w] for w in ws] + [EOS]
        out[b, : len(ids)] = torch.tensor(ids)
    return out


def eos_positions(tokens: torch.Tensor) -> torch.Tensor:
    """Index of ``<eos>`` in each row of ``tokens`` ``[B, L]``."""
    return (tokens == EOS).int().argmax(dim=1)


@dataclass(frozen=True)
class CaptionParts:
    """What a caption says: objects as (colour, shape) pairs, and the background (colour, texture) or None."""
    objects: tuple[tuple[str, str], ...]
    background: tuple[str, str] | None


def parse_caption(caption: str) -> CaptionParts:
    """``"a red ball and a blue star on a gray plain background"`` -> its parts; ``ValueError`` if it is not of that form."""
    text = " ".join(words(caption))
    if not text:
        return CaptionParts((), None)
    head, _, tail = text.partition(" on ")
    objects = []
    for phrase in head.split(" and "):
        parts = phrase.split()
        if len(parts) != 3 or parts[0] != "a" or parts[1] not in OBJECT_COLOURS or parts[2] not in SHAPES:
            raise ValueError(f"{caption!r}: expected 'a <colour> <shape>', got {phrase!r}")
        objects.append((parts[1], parts[2]))
    background = None
    if tail:
        parts = tail.split()
        if (len(parts) != 4 or parts[0] != "a" or parts[1] not in BACKGROUND_COLOURS or parts[2] not in TEXTURES
                or parts[3] != "background"):
            raise ValueError(f"{caption!r}: expected 'a <colour> <texture> background', got {tail!r}")
        background = (parts[1], parts[2])
    return CaptionParts(tuple(objects), background)
