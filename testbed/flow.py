"""The flow test bed: the eps test bed's autoencoder and text encoder with the rectified-flow UNet.

    from testbed.flow import load_flow_testbed
    ftb = load_flow_testbed()                       # sha256 of the flow UNet checked against its record
    model = ftb.denoiser(context, cfg=1.0)          # k-diffusion model(x, sigma) -> denoised (CONST units)
    sigmas = ftb.sampling_sigmas(25)                # [26] from 1 to 0, SD3's shift 3

Units: ``x_s = (1 - s) * z0 + s * noise`` with ``z0 = raw * 0.18215`` (the eps test bed's
UNet units); the UNet sees ``x_s`` at timestep ``1000 * s`` and returns the velocity
``noise - z0``, so the denoised estimate is ``x - s * v`` (ComfyUI's CONST). Trained by
``python -m testbed.train_flow`` (see ``weights_flow/record.json``); ComfyUI loads it as the
testbed's SD1.5-shaped UNet under core's ModelSamplingSD3 (shift 3): :func:`flow_comfy_model`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from . import load, models
from .train_flow import FLOW_DIR, MULTIPLIER, SHIFT, shifted

FLOW_RETRAIN_COMMAND = "python -m testbed.train_flow --out testbed/weights_flow --steps 3000 --minutes 55"


def missing_flow_files(weights_dir: Path = FLOW_DIR) -> list[Path]:
    """The flow UNet and record (and the eps test bed's files it shares) absent here."""
    weights_dir = Path(weights_dir)
    own = [p for p in (weights_dir / load.RECORD, weights_dir / load.FILES["unet"]) if not p.is_file()]
    return own + load.missing_files()


def check_flow_files(weights_dir: Path = FLOW_DIR) -> None:
    """Raise ``load.WeightsError`` naming the fix when the flow UNet is missing or not the recorded file."""
    weights_dir = Path(weights_dir)
    record_path, unet_path = weights_dir / load.RECORD, weights_dir / load.FILES["unet"]
    fix = f"restore the committed files or retrain them with `{FLOW_RETRAIN_COMMAND}`"
    if not record_path.is_file() or not unet_path.is_file():
        raise load.WeightsError(f"{weights_dir} lacks {load.RECORD} or {load.FILES['unet']}: {fix}")
    expected = json.loads(record_path.read_text())["files"][load.FILES["unet"]]["sha256"]
    got = load.sha256(unet_path)
    if got != expected:
        raise load.WeightsError(f"{unet_path} has sha256 {got}, not the recorded {expected}: {fix}")


@dataclass
class FlowTestbed:
    """The eps test bed's autoencoder and text encoder (``base``) with the flow UNet."""
    base: load.Testbed
    unet: torch.nn.Module
    shift: float = SHIFT

    def sampling_sigmas(self, steps: int) -> torch.Tensor:
        """Descending sigmas [steps + 1] from 1 to 0: uniform time through SD3's shift (ComfyUI's percent_to_sigma)."""
        return shifted(torch.linspace(1.0, 0.0, steps + 1), self.shift)

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.unet(x, sigma * MULTIPLIER, encoder_hidden_states=context.expand(x.shape[0], -1, -1)).sample

    def denoiser(self, context: torch.Tensor, uncond: torch.Tensor | None = None, cfg: float = 1.0):
        """k-diffusion ``model(x, sigma) -> denoised`` with classifier-free guidance on the velocity."""
        if uncond is None:
            uncond = self.base.text_context("")[0]

        def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
            sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
            v = self.velocity(x, sigma, context)
            if cfg != 1.0:
                v_uncond = self.velocity(x, sigma, uncond)
                v = v_uncond + cfg * (v - v_uncond)
            return x - sigma.view(-1, 1, 1, 1) * v

        return model

    def branch_denoiser(self, cond: torch.Tensor, uncond: torch.Tensor | None = None):
        """``denoise(x, sigma, branch)`` (0: ``cond``, 1: ``uncond``) for ``masked_cfg.guided_denoiser``."""
        if uncond is None:
            uncond = self.base.text_context("")[0]
        branches = (self.denoiser(cond), self.denoiser(uncond))

        def denoise(x: torch.Tensor, sigma: torch.Tensor, branch: int) -> torch.Tensor:
            return branches[branch](x, sigma)

        return denoise


def load_flow_testbed(weights_dir: Path | str = FLOW_DIR, check: bool = True) -> FlowTestbed:
    """The committed flow UNet with the committed eps test bed's autoencoder and text encoder."""
    weights_dir = Path(weights_dir)
    if check:
        check_flow_files(weights_dir)
    base = load.load_testbed(check=check)
    unet = load.load_weights(models.build_unet(), weights_dir / load.FILES["unet"]).eval().requires_grad_(False)
    return FlowTestbed(base, unet)


def flow_comfy_model(weights_dir: Path | str = FLOW_DIR, check: bool = True):
    """The flow UNet as a ComfyUI MODEL: the testbed's SD1.5-shaped UNet under core's ModelSamplingSD3 (shift 3)."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    from .comfy_wrap import testbed_model

    if check:
        check_flow_files(Path(weights_dir))
    return ModelSamplingSD3().patch(testbed_model(weights_dir, check=False), SHIFT, MULTIPLIER)[0]
