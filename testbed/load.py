"""Load the committed testbed weights and use them through plain PyTorch / drive_ops.

    from testbed.load import load_testbed
    tb = load_testbed()                      # float32, eval mode, sha256 of every file checked
    latents = tb.encode(frames)              # IMAGE [T,H,W,3] in 0..1 -> raw latents [T,4,H/8,W/8]
    images = tb.decode(latents)              # raw latents -> IMAGE [T,H,W,3] in 0..1
    context, pooled = tb.text_context(["a red ball on a blue striped background"])
    model = tb.denoiser(context, cfg=7.5)    # k-diffusion model(x, sigma) -> denoised, for drive_ops samplers
    raw = tb.sample(["a red ball on a gray plain background"] * 4, steps=50, cfg=7.5, seed=0)

Units (SD's and ComfyUI's): a LATENT holds the autoencoder's raw latents; the UNet sees
``raw * SD_LATENT_SCALE`` (0.18215), which has about unit std on the world's frames. The
k-diffusion ``x`` of :meth:`Testbed.denoiser` is in those UNet units times ``sqrt(1 + sigma^2)``
(variance-exploding), exactly what ``drive_ops.diffusion.inversion`` samplers and ComfyUI use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import models, vocab

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FILES = {"autoencoder": "autoencoder.safetensors", "text_encoder": "text_encoder.safetensors",
         "unet": "unet.safetensors"}
RECORD = "record.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(module: torch.nn.Module, path: Path, dtype: torch.dtype = torch.float16) -> str:
    """Write ``module``'s state dict as safetensors in ``dtype``; returns the file's sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(dtype).contiguous() for k, v in module.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    tmp.replace(path)
    return sha256(path)


def load_weights(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Load a safetensors state dict into ``module`` (cast to the module's float32), strictly."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    module.load_state_dict(state, strict=True)
    return module


RETRAIN_COMMAND = "python -m testbed.train --seed 0 --out testbed/weights"
"""What rewrites every weight file and ``record.json`` (about 3 h on one shared CPU core)."""


class WeightsError(RuntimeError):
    """A testbed weight file (or its record) is missing or is not the recorded one."""


def _fix(weights_dir: Path) -> str:
    return (f"restore the committed files (`git checkout -- {weights_dir}`; a Git LFS pointer needs `git lfs pull`) "
            f"or retrain them with `{RETRAIN_COMMAND}`")


def expected_sha256(weights_dir: Path = WEIGHTS_DIR) -> dict[str, str]:
    """The sha256 recorded in ``record.json`` for each weight file; :class:`WeightsError` if one is not recorded."""
    path = Path(weights_dir) / RECORD
    if not path.is_file():
        raise WeightsError(f"{path} is missing: {_fix(Path(weights_dir))}")
    files = json.loads(path.read_text()).get("files", {})
    unrecorded = [fname for fname in FILES.values() if fname not in files]
    if unrecorded:
        raise WeightsError(f"{path} records no sha256 for {', '.join(unrecorded)} (training did not finish): "
                           f"{_fix(Path(weights_dir))}")
    return {name: files[fname]["sha256"] for name, fname in FILES.items()}


def missing_files(weights_dir: Path = WEIGHTS_DIR) -> list[Path]:
    """The weight files (and record) absent from ``weights_dir``: what a test may skip on outside CI."""
    weights_dir = Path(weights_dir)
    return [p for p in [weights_dir / RECORD, *(weights_dir / f for f in FILES.values())] if not p.is_file()]


def check_files(weights_dir: Path = WEIGHTS_DIR) -> None:
    """Raise :class:`WeightsError` naming the fix if a weight file is missing or its sha256 differs from the record."""
    weights_dir = Path(weights_dir)
    for name, digest in expected_sha256(weights_dir).items():
        path = weights_dir / FILES[name]
        if not path.is_file():
            raise WeightsError(f"{path} is missing: {_fix(weights_dir)}")
        got = sha256(path)
        if got != digest:
            raise WeightsError(f"{path} has sha256 {got}, not the recorded {digest} (changed, truncated or a Git "
                               f"LFS pointer): {_fix(weights_dir)}")


def load_autoencoder(weights_dir: Path = WEIGHTS_DIR):
    return load_weights(models.build_autoencoder(), weights_dir / FILES["autoencoder"]).eval().requires_grad_(False)


def to_tensor_images(frames) -> torch.Tensor:
    """IMAGE ``[T,H,W,3]`` (numpy or torch, 0..1) -> float32 torch tensor."""
    return torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames).float()


@dataclass
class Testbed:
    """The trained autoencoder, text encoder and UNet (float32, eval, no grad) and SD1.5's schedule."""
    autoencoder: torch.nn.Module
    text_encoder: models.TextEncoder
    unet: torch.nn.Module
    alphas_cumprod: torch.Tensor      # [1000]
    sigmas: torch.Tensor              # [1000] ComfyUI's discrete sigma table, sqrt((1-a)/a)
    latent_scale: float = models.SD_LATENT_SCALE

    # ---- autoencoder (raw latents, ComfyUI LATENT units)
    @torch.no_grad()
    def encode(self, frames, batch: int = 64) -> torch.Tensor:
        """IMAGE ``[T,H,W,3]`` in 0..1 (H, W multiples of 8) -> raw latents ``[T,4,H/8,W/8]`` (posterior mean)."""
        x = to_tensor_images(frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % 8 or x.shape[2] % 8:
            raise ValueError(f"expected IMAGE [T,H,W,3] with H, W multiples of 8, got {tuple(x.shape)}")
        x = x.movedim(-1, 1) * 2.0 - 1.0
        return torch.cat([self.autoencoder.encode(x[i:i + batch]).latent_dist.mean for i in range(0, len(x), batch)])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Raw latents ``[T,4,h,w]`` -> IMAGE ``[T,8h,8w,3]`` in 0..1."""
        out = torch.cat([self.autoencoder.decode(latents[i:i + batch].float()).sample
                         for i in range(0, len(latents), batch)])
        return ((out.clamp(-1.0, 1.0) + 1.0) / 2.0).movedim(1, -1)

    def roundtrip(self, frames) -> torch.Tensor:
        """decode(encode(frames)): the best any latent edit can reproduce."""
        return self.decode(self.encode(frames))

    # ---- text
    @torch.no_grad()
    def text_context(self, captions: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (context ``[B,16,128]``, pooled ``[B,128]``); ``""`` is the unconditional prompt."""
        return self.text_encoder(vocab.tokenize(captions))

    # ---- UNet
    @torch.no_grad()
    def eps(self, z: torch.Tensor, t: torch.Tensor | int, context: torch.Tensor) -> torch.Tensor:
        """The UNet's eps for VP latents ``z`` ``[B,4,h,w]`` (UNet units) at integer timesteps ``t``."""
        t = torch.as_tensor(t).reshape(-1).expand(z.shape[0]) if torch.as_tensor(t).numel() == 1 else t
        return self.unet(z, t, encoder_hidden_states=context.expand(z.shape[0], -1, -1)).sample

    def denoiser(self, context: torch.Tensor, uncond: torch.Tensor | None = None, cfg: float = 1.0):
        """k-diffusion model ``model(x, sigma) -> denoised`` with classifier-free guidance.

        ``x`` is variance-exploding (ComfyUI's units, ``drive_ops.diffusion.schedule``); the UNet sees
        ``x / sqrt(1+sigma^2)`` at the nearest training timestep. ``context`` is ``[1,L,D]``
        (shared by every latent of the batch) or ``[B,L,D]``; ``uncond`` defaults to the
        empty prompt. With ``cfg == 1`` only the conditional branch runs.
        """
        from drive_ops.diffusion import schedule

        if uncond is None:
            uncond = self.text_context("")[0]

        def model(x: torch.Tensor, sigma: torch.Tensor, **_: object) -> torch.Tensor:
            sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])
            t = schedule.timestep_from_sigma(self.sigmas, sigma)
            z = x / schedule.vp_scale(sigma).view(-1, 1, 1, 1)
            b = x.shape[0]
            if cfg == 1.0:
                e = self.eps(z, t, context.expand(b, -1, -1))
            else:
                both = self.eps(torch.cat([z, z]), torch.cat([t, t]),
                                torch.cat([context.expand(b, -1, -1), uncond.expand(b, -1, -1)]))
                cond, unc = both.chunk(2)
                e = unc + cfg * (cond - unc)
            return x - sigma.view(-1, 1, 1, 1) * e

        return model

    def branch_denoiser(self, cond: torch.Tensor, uncond: torch.Tensor | None = None):
        """``denoise(x, sigma, branch)`` (branch 0: ``cond``, 1: ``uncond``, default the empty prompt),
        the form ``drive_ops.diffusion.masked_cfg.guided_denoiser`` takes."""
        if uncond is None:
            uncond = self.text_context("")[0]
        models_ = (self.denoiser(cond, cfg=1.0), self.denoiser(uncond, cfg=1.0))

        def denoise(x: torch.Tensor, sigma: torch.Tensor, branch: int) -> torch.Tensor:
            return models_[branch](x, sigma)

        return denoise

    @torch.no_grad()
    def sample(self, captions: list[str], steps: int = 50, cfg: float = 7.5, seed: int = 0,
               size: int | tuple[int, int] = 64) -> torch.Tensor:
        """DDIM (eta 0, diffusers' leading timesteps, ending at sigma 0) from seeded noise -> raw latents.

        Each caption gets its own noise from ``torch.Generator().manual_seed(seed)`` drawn in
        order (so a batch's latents depend on its length, not on other runs).
        """
        from drive_ops.diffusion import inversion, schedule

        h, w = (size, size) if isinstance(size, int) else size
        noise = torch.randn(len(captions), 4, h // 8, w // 8, generator=torch.Generator().manual_seed(seed))
        context = self.text_context(captions)[0]
        sigmas = schedule.ddim_sampling_sigmas(self.sigmas, steps)
        x = noise * schedule.vp_scale(sigmas[0])
        x = inversion.sample_ddim(self.denoiser(context, cfg=cfg), x, sigmas)
        return x / self.latent_scale

    def generate(self, captions: list[str], steps: int = 50, cfg: float = 7.5, seed: int = 0,
                 size: int | tuple[int, int] = 64) -> torch.Tensor:
        """:meth:`sample` then :meth:`decode`: IMAGE ``[B,H,W,3]``."""
        return self.decode(self.sample(captions, steps, cfg, seed, size))


def load_testbed(weights_dir: Path | str = WEIGHTS_DIR, check: bool = True) -> Testbed:
    """The committed (or ``weights_dir``'s) trained networks; ``check`` verifies each file's sha256 first."""
    from drive_ops.diffusion import schedule

    weights_dir = Path(weights_dir)
    if check:
        check_files(weights_dir)
    ae = load_autoencoder(weights_dir)
    te = load_weights(models.build_text_encoder(), weights_dir / FILES["text_encoder"]).eval().requires_grad_(False)
    unet = load_weights(models.build_unet(), weights_dir / FILES["unet"]).eval().requires_grad_(False)
    ac = models.alphas_cumprod()
    return Testbed(ae, te, unet, ac, schedule.sigma_from_alpha_cumprod(ac))
