"""Tuned video weights on a MODEL: apply them to a clone, check the base model, fingerprint a MODEL.

A tuned MODEL is a clone of its base with
- the to_q changes as ordinary weight patches, parsed by ComfyUI's own LoRA loader
  (``comfy.lora.load_lora``: ``.diff`` tensors for the full fine-tune, LoRA factors);
- the temporal layers as object patches (``patches.temporal_attention``);
- sparse-causal self-attention (``patches.attention``, mode sparse_causal) when the
  recipe had it;
- the weights themselves as an attachment (``TUNED_ATTACHMENT_KEY``), for Save Tuned
  Video Model.
The input MODEL is never changed. The base fingerprint (``drive_ops.diffusion.model_fingerprint``)
is taken from the weights the MODEL would sample with: its base weights plus its own
patches (a LoRA applied upstream counts), whatever another clone has loaded meanwhile.
"""

from __future__ import annotations

import comfy.lora
import torch

from ...drive_ops.diffusion.model_fingerprint import Fingerprint, compare, fingerprint, probe_names
from ...drive_ops.diffusion.temporal_attention import TemporalAttention
from ...drive_ops.diffusion.tuned_file import TunedVideoWeights
from .attention import apply_cross_frame_patch
from .keys import TEMPORAL_MODULE, TUNED_ATTACHMENT_KEY
from .temporal_attention import apply_temporal_layers, has_temporal_layers, original_block, transformer_block_paths

UNET_PREFIX = "diffusion_model."
CONFIG_KEYS_IGNORED = ("dtype", "device", "operations")
"""unet_config entries that say how the model was loaded, not what it is (fp16 on a GPU, fp32 on the CPU)."""


def _temporal_marker() -> str:
    return f".{TEMPORAL_MODULE}."


def model_fingerprint(model) -> Fingerprint:
    """The fingerprint of the UNet weights ``model`` samples with (base weights + its own patches)."""
    patches = model.get_key_patches(UNET_PREFIX)
    weights = {k: v for k, v in patches.items() if _temporal_marker() not in k}
    shapes = {k: tuple(v[0][0].shape) for k, v in weights.items()}
    probes = {}
    for name in probe_names(list(shapes)):
        (weight, convert), *extra = weights[name]
        value = convert(weight.to(torch.float32, copy=True), inplace=True)
        probes[name] = comfy.lora.calculate_weight(extra, value, name) if extra else value
    model_config = model.model.model_config
    config = {k: v for k, v in model_config.unet_config.items() if k not in CONFIG_KEYS_IGNORED}
    config["model_config"] = type(model_config).__name__
    return fingerprint(config, shapes, probes)


def tuned_of(model) -> TunedVideoWeights | None:
    """The tuned weights a MODEL carries (from Tune-A-Video or Load Tuned Video Model), if any."""
    return model.get_attachment(TUNED_ATTACHMENT_KEY)


def refuse_tuned_model(model, action: str) -> None:
    """Tuning or loading onto an already tuned MODEL would stack two sets of temporal layers."""
    if tuned_of(model) is not None or has_temporal_layers(model):
        raise ValueError(f"this MODEL already carries tuned video weights, so it cannot be {action}; connect the "
                         "base checkpoint's MODEL (the one the weights were tuned on)")


def check_base(model, tuned: TunedVideoWeights, name: str) -> None:
    """Refuse a MODEL that is not the base the weights were tuned on, with the reason."""
    saved = Fingerprint.from_dict(tuned.metadata["base_model"])
    reason = compare(saved, model_fingerprint(model))
    if reason is not None:
        raise ValueError(f"{name} was tuned on another base model (hash {saved.hash}) and this MODEL does not match: "
                         f"{reason}. Load it onto the checkpoint it was tuned on (with the same LoRAs), or tune "
                         "again on this one")


def temporal_tensors(layers: dict[str, TemporalAttention]) -> dict[str, torch.Tensor]:
    """The trained tensors of the temporal layers under their file names (``<block>.attn_temp.<proj>.<param>``)."""
    out = {}
    for path, layer in layers.items():
        for name, param in layer.named_parameters():
            if not name.startswith("norm."):
                out[f"{path}.{TEMPORAL_MODULE}.{name}"] = param.detach().float().cpu().clone()
    return out


def temporal_layers_from(model, tensors: dict[str, torch.Tensor]) -> dict[str, TemporalAttention]:
    """Temporal layers shaped like ``model``'s blocks, loaded from the file's tensors; refuses missing or odd ones."""
    marker = _temporal_marker()
    layers = {}
    with torch.inference_mode(False):
        for path in transformer_block_paths(model):
            block = original_block(model, path)
            layer = TemporalAttention(block.norm1.normalized_shape[0], block.n_heads, block.d_head)
            prefix = f"{path}{marker}"
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            expected = {n: p.shape for n, p in layer.named_parameters() if not n.startswith("norm.")}
            if set(state) != set(expected) or any(state[n].shape != s for n, s in expected.items()):
                raise ValueError(f"the tuned weights do not fit this MODEL's block {path[len(UNET_PREFIX):]}: "
                                 f"expected {sorted(expected)} with shapes {[tuple(s) for s in expected.values()]}")
            with torch.no_grad():
                for n, value in state.items():
                    layer.get_parameter(n).copy_(value)
            layer.requires_grad_(False)
            layers[path] = layer
    stray = [k for k in tensors if marker in k and k.split(marker)[0] not in layers]
    if stray:
        raise ValueError(f"the tuned weights have temporal layers for blocks this MODEL lacks, e.g. {stray[0]}")
    return layers


def weight_patches(model, tensors: dict[str, torch.Tensor]) -> dict:
    """The to_q changes as ComfyUI weight patches (``comfy.lora.load_lora``), every tensor accounted for."""
    marker = _temporal_marker()
    lora = {k: v for k, v in tensors.items() if marker not in k}
    layers = {k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0] for k in lora}
    patches = comfy.lora.load_lora(lora, {layer: f"{layer}.weight" for layer in layers}, log_missing=False)
    known = model.model_state_dict().keys()
    missing = sorted(k for k in patches if k not in known)
    if missing or len(patches) != len(layers):
        raise ValueError(f"the tuned weights name {len(layers)} to_q layers but only {len(patches)} are LoRA / diff "
                         f"entries this MODEL has (e.g. {missing[:1] or sorted(layers)[:1]})")
    return patches


def apply_tuned(model, tuned: TunedVideoWeights):
    """A clone of ``model`` that samples with the tuned weights (the input MODEL is not changed)."""
    refuse_tuned_model(model, "given tuned weights again")
    patches = weight_patches(model, tuned.tensors)
    layers = temporal_layers_from(model, tuned.tensors)
    patched = model.clone()
    accepted = patched.add_patches(patches, 1.0)
    if len(accepted) != len(patches):
        raise ValueError(f"only {len(accepted)} of the {len(patches)} to_q patches fit this MODEL")
    patched = apply_temporal_layers(patched, layers)
    if tuned.metadata["recipe"]["sparse_causal"]:
        patched = apply_cross_frame_patch(patched, "sparse_causal", 0, False, "all", 0.0, 1.0)
    patched.set_attachments(TUNED_ATTACHMENT_KEY, tuned)
    return patched
