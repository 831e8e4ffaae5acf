"""DRIVE end to end on SD3 and Flux.1 model files that ComfyUI itself detects, inside an in-process ComfyUI.

tools/make_random_sd3_flux.py writes a small random SD3 MMDiT, a small random Flux.1 [dev]
transformer and their 16-channel VAE in the official layouts; core's Load Diffusion Model and
Load VAE load them here (SD3: CONST sampling at shift 3, latent format SD3; Flux.1: ModelSamplingFlux,
latent format Flux; 16 latent channels at 8 px per cell). Conditioning is made directly at the
text encoders' widths (T5-XXL's 4096; the pooled CLIP-L+G 2048 for SD3, CLIP-L 768 and guidance
for Flux.1). Through the nodes: VAE Encode -> Invert Video (Euler, FireFlow) -> Masked-CFG Sampler
at cfg 1 reconstructs with an error that falls with the steps; the cfg-1 masked edit ends on the
source bit for bit outside the latent mask; VAE Decode -> Composite Background keeps every pixel
outside the mask, at cfg 1 and with masked guidance on a shuffled 2x2 grid. Random weights: the
numbers mean nothing, the code paths and the equalities are the real ones. Flux.1 needs ComfyUI 0.33:
0.3.64's detection fixes Flux.1's width at 3072, too big for a CPU test file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inprocess_fixtures import no_grad, pack  # noqa: F401 (fixtures)
from random_weights import provide_parts

pytestmark = pytest.mark.integration

T, H, W = 4, 64, 64
TOOL = "make_random_sd3_flux.py"
FILES = {"sd3": ("diffusion_models", "random_sd3_mmdit.safetensors"),
         "flux": ("diffusion_models", "random_flux1_dev.safetensors"),
         "vae": ("vae", "random_sd3_flux_vae.safetensors")}
FAMILIES = ["sd3", pytest.param("flux", marks=pytest.mark.min_core("0.33.0"))]
DETECTED = {"sd3": ("SD3", "SD3", 3.0), "flux": ("Flux", "Flux", 1.15)}
"""Per family: ComfyUI's model config, latent format and flow shift as loaded (Flux.1: ModelSamplingFlux's 1.15; the
ModelSamplingFlux node would set it from the image size)."""
ORDER = {"ddim": 0.4, "fireflow": 0.1}
"""Each 4x more steps shrinks the reconstruction error at least by this factor: Euler is first order (1/4; measured
0.25-0.33), FireFlow second (1/16; measured 0.02-0.08)."""
RECONSTRUCTION_64_STEPS = {("sd3", "ddim"): 0.05, ("sd3", "fireflow"): 1e-3, ("flux", "ddim"): 0.4,
                           ("flux", "fireflow"): 0.01}
"""Relative error after 64 + 64 steps; measured 2.9e-2, 1.0e-4, 0.26, 3.2e-3 (the random Flux.1's velocity varies
much more with the latent than the random SD3's)."""


@pytest.fixture(scope="module")
def models_dir(pack, tmp_path_factory) -> Path:
    """A models folder registered with ComfyUI, the random files written into it as the tests ask for them."""
    import folder_paths

    root = tmp_path_factory.mktemp("sd3_flux_models")
    for folder in {folder for folder, _ in FILES.values()}:
        (root / folder).mkdir()
        folder_paths.add_model_folder_path(folder, str(root / folder))
    return root


def _load(pack, models_dir: Path, family: str):
    """(model, vae) through core's Load Diffusion Model and Load VAE, the files written first when missing."""
    import os

    import nodes as core

    provide_parts(TOOL, {family: FILES[family], "vae": FILES["vae"]}, models_dir, Path(os.environ["COMFYUI_DIR"]))
    model = core.UNETLoader().load_unet(FILES[family][1], "default")[0]
    vae = core.VAELoader().load_vae(FILES["vae"][1])[0]
    return model, vae


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request, pack, models_dir):
    """(family, model, vae) for each family the core has."""
    return (request.param, *_load(pack, models_dir, request.param))


def _frames(seed: int = 5) -> torch.Tensor:
    return torch.rand(T, H, W, 3, generator=torch.Generator().manual_seed(seed))


def _cond(family: str, seed: int) -> list:
    """Text conditioning at the encoders' widths, as CLIP Text Encode (+ FluxGuidance) would give it."""
    g = torch.Generator().manual_seed(seed)
    if family == "sd3":
        return [[torch.randn(1, 8, 4096, generator=g), {"pooled_output": torch.randn(1, 2048, generator=g)}]]
    return [[torch.randn(1, 8, 4096, generator=g), {"pooled_output": torch.randn(1, 768, generator=g),
                                                    "guidance": 3.5}]]


def _mask() -> torch.Tensor:
    mask = torch.zeros(T, H, W)
    mask[:, 16:48, 16:48] = 1.0
    return mask


def _latent_keep(shape) -> torch.Tensor:
    """Where :func:`_mask` reduced to the 8x8 latent is 0, over latents of ``shape`` [T,C,8,8]: bool."""
    keep = torch.ones(T, 1, H // 8, W // 8, dtype=torch.bool)
    keep[:, :, 2:6, 2:6] = False
    return keep.expand(shape)


def _invert(pack, model, cond, latent: dict, steps: int, method: str) -> dict:
    return pack("nodes.invert").InvertVideo.execute(model, cond, latent, steps, method, 0.5, 0.05, 0.2, "after", 1.0,
                                                    1, 0).args[0]


def _edit(pack, model, pos, neg, latent: dict, steps: int, cfg: float, grid: int = 1, shuffle: bool = False,
          mask=None, cfg_start: float = 0.0) -> dict:
    return pack("nodes.edit").MaskedCFGSampler.execute(model, pos, neg, latent, steps, cfg, cfg_start, grid, shuffle,
                                                       4, 0, "nearest", 0.5, mask).args[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_the_files_load_as_their_family_with_its_latent_format(pack, loaded):
    family, model, vae = loaded
    config, latent_format, shift = DETECTED[family]
    assert type(model.model.model_config).__name__ == config
    assert type(model.get_model_object("latent_format")).__name__ == latent_format
    found = pack("nodes.patches.model_family").family_of(model)
    assert (found.kind, found.latent_factor) == ("flow", 8)
    assert found.shift == pytest.approx(shift)
    latent = vae.encode(_frames())
    assert tuple(latent.shape) == (T, 16, H // 8, W // 8) and bool(torch.isfinite(latent).all())
    assert tuple(vae.decode(latent).shape) == (T, H, W, 3)


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_inversion_then_cfg_one_resampling_converges_with_the_steps(pack, loaded, method):
    family, model, vae = loaded
    latent, cond = vae.encode(_frames()), _cond(family, 2)
    errors = {}
    for steps in (4, 16, 64):
        inv = _invert(pack, model, cond, {"samples": latent}, steps, method)
        rec = _edit(pack, model, cond, cond, inv, steps, cfg=1.0, cfg_start=-1.0)
        errors[steps] = _rel(rec["samples"], latent)
    print(f"{family} {method}: invert -> reconstruct relative error", {k: f"{v:.2e}" for k, v in errors.items()})
    assert errors[16] < ORDER[method] * errors[4] and errors[64] < ORDER[method] * errors[16], errors
    assert errors[64] < RECONSTRUCTION_64_STEPS[family, method], errors


def test_the_cfg_one_masked_edit_keeps_every_latent_outside_the_mask_on_the_source(pack, loaded):
    family, model, vae = loaded
    latent = vae.encode(_frames())
    inv = _invert(pack, model, _cond(family, 2), {"samples": latent}, 4, "fireflow")
    out = _edit(pack, model, _cond(family, 3), _cond(family, 2), inv, 4, cfg=1.0, grid=2, shuffle=True, mask=_mask())
    keep = _latent_keep(latent.shape)
    assert out["samples"].shape == latent.shape
    assert torch.equal(out["samples"][keep], latent[keep])
    assert float((out["samples"][~keep] - latent[~keep]).abs().max()) > 1e-3


@pytest.mark.parametrize(("method", "cfg"), [("ddim", 1.0), ("fireflow", 1.0), ("ddim", 4.0), ("fireflow", 4.0)])
def test_invert_edit_decode_composite_keeps_every_background_pixel(pack, loaded, method, cfg):
    """VAE Encode -> Invert Video -> Masked-CFG Sampler (grid 2, shuffled) -> VAE Decode -> Composite Background."""
    family, model, vae = loaded
    frames, mask = _frames(), _mask()
    inv = _invert(pack, model, _cond(family, 2), {"samples": vae.encode(frames)}, 4, method)
    edited = _edit(pack, model, _cond(family, 3), _cond(family, 2), inv, 4, cfg=cfg, grid=2, shuffle=True, mask=mask)
    assert bool(torch.isfinite(edited["samples"]).all())
    decoded = vae.decode(edited["samples"])
    out = pack("nodes.composite").CompositeBackground.execute(decoded, frames, mask, 0, 0.0, "alpha").args[0]
    outside = mask[..., None].expand_as(frames) == 0
    assert out.shape == frames.shape
    assert torch.equal(out[outside], frames[outside])
    assert float((out[~outside] - frames[~outside]).abs().max()) > 1e-3
