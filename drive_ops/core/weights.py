"""Read a weight file (``.safetensors``, or a PyTorch pickle with ``weights_only=True``), with errors users can act on.

Every loader of the pack (SAM 2, Harmonizer) reads its file here, so a broken file
always gets the same kind of message: which file, what is wrong with it (empty,
truncated, corrupt, not a checkpoint, code inside the pickle) and how to get a good
one. torch's own text for a refused pickle advises re-running with
``weights_only=False``, which would run whatever code the file carries; that advice
never reaches the user, and pickles are only ever read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import re
import zipfile

import torch

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


class WeightFileError(ValueError):
    """A weight file that cannot be used; the message names the file, the fault and the fix."""


def _fault(path: str, err: BaseException) -> str:
    """What is wrong with ``path``, from the loader's exception, in words (never torch's advice)."""
    text = str(err)
    # torch words it "unsupported GLOBAL posix.system" (a blocked module) or "Unsupported global: GLOBAL x.y"
    blocked = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)
    if blocked:
        return (f"holds Python code or objects ({blocked.group(1)}), not just tensors, so it was refused unread "
                "(loading it could run that code): it is not a plain checkpoint, and may be booby-trapped")
    if isinstance(err, EOFError) or "incomplete metadata" in text or "failed finding central directory" in text:
        return "ends early: it is truncated (an interrupted download or copy)"
    if "PytorchStreamReader" in text or isinstance(err, zipfile.BadZipFile):
        return "is corrupt (its zip archive does not read back)"
    if "header" in text:
        return "is not a valid .safetensors file (its header does not read: corrupt, truncated or another kind of file)"
    return "is not a PyTorch checkpoint (corrupt, or another kind of file)"


def load_weight_file(path: str | os.PathLike, model: str, how_to_get: str) -> dict:
    """The tensors of ``path``: a ``.safetensors`` file, or a pickle read with ``weights_only=True``.

    ``model`` names what the file should hold ("a SAM 2 checkpoint"), ``how_to_get`` how
    to obtain a good one; both go into the WeightFileError raised for a missing, empty,
    truncated, corrupt or code-carrying file, or one that holds no dict.
    """
    path = os.fspath(path)
    name, folder = os.path.basename(path), os.path.dirname(os.path.abspath(path))

    def refuse(fault: str) -> WeightFileError:
        return WeightFileError(f"the weight file {name} (in {folder}) {fault}. It should be {model}. {how_to_get}")

    if not os.path.isfile(path):
        raise refuse("does not exist or is not a file")
    if os.path.getsize(path) == 0:
        raise refuse("is empty (0 bytes: an interrupted download or copy)")
    try:
        if path.lower().endswith(SAFETENSORS_SUFFIXES):
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - bytes that are no checkpoint fail in many ways (IndexError, ...)
        raise refuse(_fault(path, err)) from None
    if not isinstance(state, dict):
        raise refuse(f"holds a {type(state).__name__}, not a dict of tensors")
    return state
