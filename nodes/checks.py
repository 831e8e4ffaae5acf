"""The nodes' input checks that need a node's voice: masks clamped to 0..1 with a logged note, combo choices.

The checks themselves are ``drive_ops.core.validate`` (finite IMAGE / LATENT / MASK,
finite numbers); this adds what only a node can do: telling the user in ComfyUI's
console which node changed its input and why, and checking a choice against the
options its schema offers.
"""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..drive_ops.core.validate import check_mask, unit_range_mask

_LOG = logging.getLogger(__name__)


def blend_mask(mask: torch.Tensor, node: str, what: str = "the mask input") -> torch.Tensor:
    """A finite MASK for blending, clamped to 0..1 (values outside would extrapolate the blend), with a note."""
    check_mask(mask, what)
    mask, note = unit_range_mask(mask, what)
    if note:
        _LOG.warning("%s: %s", node, note)
    return mask


def check_options(node: type[io.ComfyNode], **values: object) -> None:
    """Refuse a combo value that ``node``'s schema does not offer, naming the options.

    ComfyUI 0.3.64 checks a V1 node's combos against their list, but a V3 combo's type is
    the string "COMBO", so a prompt sent through the API (or edited by hand) reaches the
    node with any text: without this an unknown choice could quietly fall back to a default.
    Optional combos given as None (not connected) are skipped.
    """
    combos = {i.id: i.options for i in node.define_schema().inputs if isinstance(i, io.Combo.Input)}
    for name, value in values.items():
        options = combos[name]
        if value is not None and value not in options:
            raise ValueError(f"{name} {value!r:.60} is not one of its options ({', '.join(map(str, options))}); pick "
                             "one of them (a prompt sent through the API can hold any text, the widget cannot)")


def combo_answer(node: type[io.ComfyNode], **values: object) -> bool | str:
    """``validate_inputs``' answer for the combos it names: True, or the message of :func:`check_options`.

    From about 0.7 core checks a V3 combo against its options before the node runs and answers
    "Value not in list"; inputs a node names in ``validate_inputs`` are exempt from that check,
    so the pack's message (the options, or for a model file the folder to put it in) is the
    one the user sees on every core. A linked combo is None here (its value is not known yet)
    and is checked when the node runs.
    """
    try:
        check_options(node, **values)
    except ValueError as err:
        return str(err)
    return True
