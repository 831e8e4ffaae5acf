"""The other nodes' execute() on the trained test bed (issue 16): STEM Attention, Cross-Frame Attention,
Pix2Video Sampler (through core SamplerCustom) and RAVE Grid + Masked-CFG Patch with core KSamplerAdvanced.

In-process ComfyUI on testbed.comfy_wrap's MODEL / VAE / CONDITIONING; held-out clips 21, 22, 23,
8 frames at 64 px, 20 steps, empty-prompt DDIM inversion, cfg 7.5 with the true mask. Measured
(clips 21 / 22 / 23):
- reconstruction at cfg 1 against the AE round trip: DDIM 40.7 / 44.9 / 38.5 dB; with STEM
  Attention on the inversion 35.2 / 36.2 / 32.2 dB, so STEM inverts worse than DDIM here;
- object warp error (e-3) plain 90.4 / 1.00 / 0.053, Cross-Frame Attention (pix2video mode)
  76.0 / 0.95 / 0.051, flicker 4.22 / 0.66 / 1.065 -> 3.90 / 0.64 / 1.064, same frames recoloured;
- Pix2Video Sampler at weight 100: warp 240 / 184 / 145, flicker 7.1 / 12.9 / 38.9: its latent
  guidance makes the edit far less steady on this world (the claim does not hold; README's quality section);
- the patch nodes with core KSamplerAdvanced (ddim, ddim_uniform) equal the Masked-CFG Sampler to 2.3e-5.
"""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.integration

STEPS = 20


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def runs():
    from comfy_inprocess import load_pack, start_comfy_on_testbed

    start_comfy_on_testbed()
    torch.set_num_threads(1)
    import comfy_extras.nodes_custom_sampler as custom
    import nodes as core
    from quality_edit import CLIP_SEEDS, make_case, object_flicker, object_warp_error, success

    from drive_ops.diffusion import schedule
    from testbed import comfy_wrap

    pack = load_pack()
    invert, edit, consistency = pack("nodes.invert"), pack("nodes.edit"), pack("nodes.consistency")
    sigma_table = pack("nodes.patches.samplers").sigma_table
    model, vae = comfy_wrap.testbed_model(), comfy_wrap.testbed_vae()
    empty = comfy_wrap.testbed_conditioning("")

    def decode(latent: dict) -> torch.Tensor:
        with torch.no_grad():
            return vae.decode(latent["samples"]).float()

    def masked_cfg(m, positive, latent, cfg, mask=None) -> dict:
        return edit.MaskedCFGSampler.execute(m, positive, empty, latent, STEPS, cfg, 0.0, 1, False, 0, 0, "nearest",
                                             0.5, mask).args[0]

    stem_model = invert.STEMAttention.execute(model, 256, 5, 0.01, 0, "gaussian", 0).args[0]
    cross_model = consistency.CrossFrameAttention.execute(model, "pix2video", 0, False, "mode default", 0.0,
                                                          1.0).args[0]
    pix2video = consistency.Pix2VideoSampler.execute(100.0, 0.52, 0).args[0]
    sigmas = schedule.ddim_sampling_sigmas(sigma_table(model), STEPS)
    out = []
    for seed in CLIP_SEEDS[:3]:
        case = make_case(seed)
        latent = {"samples": vae.encode(case.frames)}
        roundtrip = decode(latent)
        positive = comfy_wrap.testbed_conditioning(case.target_caption)
        inverted = {}
        for name, m in (("ddim", model), ("stem", stem_model)):
            inverted[name] = invert.InvertVideo.execute(m, empty, latent, STEPS, "ddim", 0.5, 0.05, 0.2, "after", 1.0,
                                                        1, 0).args[0]
        psnr = {name: _psnr(decode(masked_cfg(model, empty, inv, 1.0)), roundtrip) for name, inv in inverted.items()}
        patched = edit.RAVEGridPatch.execute(model, 1, False, 0, 0).args[0]
        patched = edit.MaskedCFGPatch.execute(patched, case.mask, 0.0, "nearest", 0.5).args[0]
        guided = edit.MaskedCFGPatch.execute(model, case.mask, 0.0, "nearest", 0.5).args[0]
        images = {
            "plain": decode(masked_cfg(model, positive, inverted["ddim"], 7.5, case.mask)),
            "cross": decode(masked_cfg(cross_model, positive, inverted["ddim"], 7.5, case.mask)),
            "patched": decode(core.KSamplerAdvanced().sample(patched, "disable", 0, STEPS, 7.5, "ddim", "ddim_uniform",
                                                             positive, empty, inverted["ddim"], 0, 10000,
                                                             "disable")[0]),
            "pix2video": decode(custom.SamplerCustom().sample(guided, False, 0, 7.5, positive, empty, pix2video,
                                                              sigmas, inverted["ddim"])[0]),
        }
        numbers = {k: dict(success=success(case, img)[0], warp=object_warp_error(img, case.clip),
                           flicker=object_flicker(case, img)) for k, img in images.items()}
        out.append(dict(psnr=psnr, images=images, numbers=numbers))
    return out


def test_patch_nodes_with_core_ksampler_equal_the_one_box(runs):
    """Decoded frames within 2.3e-5 measured (bound 1e-3): the same UNet calls, summed in another order."""
    for run in runs:
        assert float((run["images"]["patched"] - run["images"]["plain"]).abs().max()) < 1e-3


def test_stem_attention_inverts_and_reconstructs(runs):
    """DDIM >= 38.5 dB measured (floor 36); STEM Attention >= 32.2 dB (floor 30), below DDIM on every clip."""
    for run in runs:
        assert run["psnr"]["ddim"] >= 36.0, run["psnr"]
        assert 30.0 <= run["psnr"]["stem"] < run["psnr"]["ddim"], run["psnr"]


def test_cross_frame_attention_is_steadier(runs):
    """Mean object warp error 0.84x plain's measured (bound 0.95x); flicker no higher; the same frames recoloured."""
    def mean(kind: str, key: str) -> float:
        return sum(run["numbers"][kind][key] for run in runs) / len(runs)

    assert mean("cross", "warp") <= 0.95 * mean("plain", "warp")
    assert mean("cross", "flicker") <= mean("plain", "flicker")
    for run in runs:
        assert run["numbers"]["cross"]["success"] == run["numbers"]["plain"]["success"]


def test_pix2video_sampler_guides_the_edit(runs):
    """The SAMPLER runs through core SamplerCustom on the masked-CFG MODEL and changes the edit (finite frames);
    on this world it makes the object far less steady (warp 1.6-2700x plain's), reported, not asserted as a gain."""
    for run in runs:
        p2v = run["images"]["pix2video"]
        assert torch.isfinite(p2v).all()
        assert (p2v - run["images"]["plain"]).abs().max() > 0.05
