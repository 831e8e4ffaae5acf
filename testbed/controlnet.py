"""The test bed's depth ControlNet (trained by ``testbed/train_controlnet.py``) in plain PyTorch.

    from testbed import controlnet, hints, load
    tb = load.load_testbed()
    net = controlnet.load_controlnet()                       # diffusers ControlNetModel, float32, eval
    unet = controlnet.ControlledUNet(tb.unet, net, strength=1.0)
    unet.hint = controlnet.hint_tensor(hints.clip_hints(clip))   # [B,3,H,W], the batch the UNet will see
    eps = unet(z, t, encoder_hidden_states=context).sample

``ControlledUNet`` adds the ControlNet's residuals to the frozen UNet as diffusers'
pipelines do (and as ComfyUI's ControlNet does to its UNet): a drop-in for ``Testbed.unet``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import load, models

CONTROLNET_DIR = Path(__file__).resolve().parent / "weights_controlnet"
CONTROLNET_FILE = "controlnet.safetensors"
HINT_CHANNELS = (16, 32, 96, 256)
"""The hint encoder's widths: with diffusers' layout the same convs as ComfyUI's ``cldm`` hint block."""
RETRAIN_COMMAND = "python -m testbed.train_controlnet --seed 0 --out testbed/weights_controlnet"


def build_controlnet(unet):
    """diffusers ``ControlNetModel`` copied from ``unet`` with the depth hint encoder (3 channels in)."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=HINT_CHANNELS, conditioning_channels=3)


def missing_files(weights_dir: Path = CONTROLNET_DIR) -> list[Path]:
    """The ControlNet's weight file and record absent from ``weights_dir``."""
    weights_dir = Path(weights_dir)
    return [p for p in (weights_dir / load.RECORD, weights_dir / CONTROLNET_FILE) if not p.is_file()]


def check_file(weights_dir: Path = CONTROLNET_DIR) -> None:
    """Raise ``load.WeightsError`` naming the fix if the weights are missing or not the recorded ones."""
    import json

    weights_dir = Path(weights_dir)
    fix = f"restore the committed files (`git checkout -- {weights_dir}`) or retrain with `{RETRAIN_COMMAND}`"
    missing = missing_files(weights_dir)
    if missing:
        raise load.WeightsError(f"{', '.join(map(str, missing))} missing: {fix}")
    digest = json.loads((weights_dir / load.RECORD).read_text())["files"][CONTROLNET_FILE]["sha256"]
    got = load.sha256(weights_dir / CONTROLNET_FILE)
    if got != digest:
        raise load.WeightsError(f"{weights_dir / CONTROLNET_FILE} has sha256 {got}, not the recorded {digest}: {fix}")


def load_controlnet(weights_dir: Path | str = CONTROLNET_DIR, check: bool = True):
    """The committed ControlNet (float32, eval, no grad); ``check`` verifies its sha256 first."""
    weights_dir = Path(weights_dir)
    if check:
        check_file(weights_dir)
    net = build_controlnet(models.build_unet())
    return load.load_weights(net, weights_dir / CONTROLNET_FILE).eval().requires_grad_(False)


def hint_tensor(hint_images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Hints ``[B, H, W, 3]`` in 0..1 (an IMAGE) -> ``[B, 3, H, W]``: the ControlNet's ``controlnet_cond``."""
    x = hint_images if torch.is_tensor(hint_images) else torch.from_numpy(np.asarray(hint_images))
    return x.float().movedim(-1, 1)


class ControlledUNet(torch.nn.Module):
    """The frozen UNet with ``controlnet``'s residuals (times ``strength``) for :attr:`hint` added.

    :attr:`hint` is ``[B, 3, 8h, 8w]`` for latents ``[B, 4, h, w]`` (set it before each call: a
    grid step needs the hints tiled as the latents are), or ``None`` for the UNet alone.
    Attention processors are the UNet's (so cross-frame / STEM patches apply to it).
    """

    def __init__(self, unet, controlnet, strength: float = 1.0):
        super().__init__()
        self.unet, self.controlnet, self.strength = unet, controlnet, float(strength)
        self.hint: torch.Tensor | None = None

    @property
    def attn_processors(self):
        return self.unet.attn_processors

    def set_attn_processor(self, processors) -> None:
        self.unet.set_attn_processor(processors)

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor):
        if self.hint is None or self.strength == 0.0:
            return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states)
        size = (8 * sample.shape[-2], 8 * sample.shape[-1])
        if self.hint.shape[0] != sample.shape[0] or tuple(self.hint.shape[-2:]) != size:
            raise ValueError(f"hint {tuple(self.hint.shape)} does not match latents {tuple(sample.shape)} "
                             "(one hint per latent, 8x its size)")
        down, mid = self.controlnet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                                    controlnet_cond=self.hint.to(sample), conditioning_scale=self.strength,
                                    return_dict=False)
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         down_block_additional_residuals=down, mid_block_additional_residual=mid)

