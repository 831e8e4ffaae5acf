"""The tuned-video-model file: only the trained tensors, as safetensors, with the recipe in its metadata.

A file holds tensors under the base model's own names (``diffusion_model.<path>``): the
new temporal layers' projections (``<block>.attn_temp.to_q.weight`` ...) and the to_q
changes in ComfyUI's LoRA-file forms (``<layer>.diff`` for a full fine-tune,
``<layer>.lora_up.weight`` / ``lora_down.weight`` / ``alpha`` for LoRA). Its string
metadata holds ``format``, ``format_version`` and JSON values (the recipe, the base
model's fingerprint, the loss curve). No pickle anywhere.

Writing goes to a temporary file in the target folder, renamed over the target at the
end, so a failed or cancelled save leaves no partial file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FORMAT = "drive_tuned_video_model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TunedVideoWeights:
    """What a tuning run made: the trained tensors (file names, CPU) and their metadata (JSON values)."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any]


def save_tuned(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` (CPU copies, contiguous) and JSON-encoded ``metadata`` to ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if not tensors:
        raise ValueError("nothing to save: the tuned weights hold no tensors")
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    header.update({key: json.dumps(value) for key, value in metadata.items()})
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(cpu, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_tuned(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a tuned file; refuses files of another kind or a newer format, naming the file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path.name} is not a readable safetensors file ({err}); save it again with "
                         "Save Tuned Video Model (DRIVE)") from err
    if header.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a DRIVE tuned video model (its metadata has no format "
                         f"'{FORMAT}'); pick a file written by Save Tuned Video Model (DRIVE)")
    version = int(header.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise ValueError(f"{path.name} has format version {version}, this pack reads up to {FORMAT_VERSION}; "
                         "update the DRIVE pack")
    metadata = {key: json.loads(value) for key, value in header.items() if key not in ("format", "format_version")}
    return tensors, metadata
