"""A cheap, stable fingerprint of a base model's weights, to refuse tuned weights made for another model.

The fingerprint has two parts (docs/algorithms.md, Tune-A-Video):
- ``architecture``: sha256 of the model config and of every weight's name and shape
  (sorted), 16 hex digits. Different layouts can never match.
- ``probe``: ``PROBE_VALUES`` values of each of ``PROBE_TENSORS`` weights picked at even
  steps through the sorted names, each at even steps through the flattened weight, as
  float32. It costs a few milliseconds and covers every part of the network.

``weights`` hashes the architecture and the probe rounded to float16, so the same
checkpoint loaded at fp32 or fp16 gets the same string. A model loaded at another
precision (bf16, fp8) can change it; :func:`compare` then decides on the probe itself: two
models are the same when the probes differ by less than ``tolerance`` (1%) in relative
RMS, which bf16 rounding (at most 0.4% per value) stays under and a different
fine-tune or an added LoRA does not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

PROBE_TENSORS = 64
PROBE_VALUES = 32
TOLERANCE = 0.01


@dataclass(frozen=True)
class Fingerprint:
    architecture: str
    weights: str
    probe: tuple[float, ...]

    @property
    def hash(self) -> str:
        """The one string users see: ``<architecture>-<weights>``."""
        return f"{self.architecture}-{self.weights}"

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "weights": self.weights, "probe": list(self.probe)}

    @classmethod
    def from_dict(cls, data: dict) -> Fingerprint:
        return cls(str(data["architecture"]), str(data["weights"]), tuple(float(v) for v in data["probe"]))


def probe_names(names: list[str], count: int = PROBE_TENSORS) -> list[str]:
    """``count`` names at even steps through the sorted names (all of them if there are fewer)."""
    ordered = sorted(names)
    if len(ordered) <= count:
        return ordered
    return [ordered[(i * len(ordered)) // count] for i in range(count)]


def probe_values(weight: torch.Tensor, count: int = PROBE_VALUES) -> torch.Tensor:
    """``count`` values at even steps through the flattened ``weight`` (repeats if it is smaller), float32 [count]."""
    flat = weight.detach().reshape(-1)
    index = (torch.arange(count) * flat.numel()) // count
    return flat[index.to(flat.device)].float().cpu()


def architecture_hash(config: dict, shapes: dict[str, tuple[int, ...]]) -> str:
    """sha256 (16 hex digits) of the config and every weight's name and shape."""
    text = json.dumps(config, sort_keys=True, default=str) + "".join(
        f"{name}:{tuple(shape)};" for name, shape in sorted(shapes.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(config: dict, shapes: dict[str, tuple[int, ...]], probes: dict[str, torch.Tensor]) -> Fingerprint:
    """The fingerprint from the config, all weight shapes, and the probed weights (name -> tensor).

    ``probes`` must hold the tensors named by ``probe_names(list(shapes))``.
    """
    names = probe_names(list(shapes))
    missing = [n for n in names if n not in probes]
    if missing:
        raise ValueError(f"the probe needs {len(missing)} more weights, e.g. {missing[0]}")
    values = torch.cat([probe_values(probes[n]) for n in names]) if names else torch.zeros(0)
    arch = architecture_hash(config, shapes)
    digest = hashlib.sha256(arch.encode() + values.to(torch.float16).numpy().tobytes()).hexdigest()[:16]
    return Fingerprint(arch, digest, tuple(values.tolist()))


def compare(saved: Fingerprint, current: Fingerprint, tolerance: float = TOLERANCE) -> str | None:
    """None when ``current`` is the model ``saved`` was taken from; otherwise the reason, with numbers."""
    if saved.architecture != current.architecture:
        return (f"its architecture differs (layout hash {current.architecture}, the tuned weights need "
                f"{saved.architecture}): it is another kind of model")
    if saved.weights == current.weights:
        return None
    a, b = torch.tensor(saved.probe), torch.tensor(current.probe)
    if a.shape != b.shape:
        return f"its weight probe has {b.numel()} values, the tuned weights recorded {a.numel()}"
    relative = float((a - b).norm() / a.norm().clamp_min(1e-12))
    if relative <= tolerance:
        return None
    return (f"its weights differ: relative RMS difference {relative:.3g} over {a.numel()} probed values "
            f"(same model at another precision stays under {tolerance:g}); it is another checkpoint, or the "
            "MODEL carries a LoRA or other patches the tuned one did not (or lacks ones it had)")
