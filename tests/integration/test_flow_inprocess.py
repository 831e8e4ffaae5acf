"""DRIVE on flow-matching models, inside an in-process ComfyUI, on tiny random-weight UNets made CONST.

Core's ModelSamplingSD3 / ModelSamplingFlux turn the tiny SD1.5-shaped UNet into a flow
model (CONST sampling at any shift), the test vehicle without downloads; a 16-channel
UNet in SD3's latent format stands in for SD3 / Flux latents. Through the nodes: Invert
Video (Euler, EasyInv's blend, FireFlow) -> Masked-CFG Sampler reconstructs with an error
that falls with the steps; masked guidance at cfg > 1 and the masked edit at cfg 1 keep
every latent outside the mask on the source (at cfg 1 on its trajectory at every model
call); the inverted latent's record refuses an eps latent on a flow model, another shift,
and EDM models are refused naming what is supported. Random weights: the numbers mean
nothing, the code paths and the equalities are the real ones.
"""

from __future__ import annotations

import pytest
import torch

from comfy_inprocess import seeded_random_model
from inprocess_fixtures import pack  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

T, H, W = 4, 8, 8


def _sd3(model, shift: float = 3.0):
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    return ModelSamplingSD3().patch(model, shift)[0]


def _flux(model):
    from comfy_extras.nodes_model_advanced import ModelSamplingFlux

    return ModelSamplingFlux().patch(model, 1.15, 0.5, 8 * W, 8 * H)[0]


def _sixteen_channel_sd3(pack):
    """A tiny UNet with 16 latent channels in SD3's latent format, with SD3's sampling (shift 3)."""
    import comfy.latent_formats
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models
    from comfy_inprocess import unet_config

    config = dict(unet_config(False), in_channels=16, out_channels=16, dtype=torch.float32)
    model_config = comfy.supported_models.SD15(dict(config, attention_resolutions=None))
    model_config.unet_config = dict(config)
    model_config.latent_format = comfy.latent_formats.SD3()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        base = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.FLOW,
                                          device=torch.device("cpu"))
        with torch.no_grad():
            for p in base.parameters():
                torch.nn.init.normal_(p, std=0.02)
    patcher = comfy.model_patcher.ModelPatcher(base, load_device=torch.device("cpu"),
                                               offload_device=torch.device("cpu"))
    return _sd3(patcher, 3.0)


@pytest.fixture(scope="module")
def flow_model(pack):
    return _sd3(seeded_random_model(std=0.05), 3.0)


def _latent(frames: int = T, channels: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(frames, channels, H, W, generator=torch.Generator().manual_seed(seed))


def _cond(seed: int, dim: int = 768) -> list:
    return [[torch.randn(1, 77, dim, generator=torch.Generator().manual_seed(seed)), {}]]


def _mask(frames: int = 1) -> torch.Tensor:
    mask = torch.zeros(frames, 8 * H, 8 * W)
    mask[:, 16:48, 16:48] = 1.0
    return mask


def _latent_keep(frames: int = T) -> torch.Tensor:
    """Where the latent mask of :func:`_mask` is 0 (kept), broadcast over channels: [T,1,h,w] bool."""
    keep = torch.ones(frames, 1, H, W, dtype=torch.bool)
    keep[:, :, 2:6, 2:6] = False
    return keep


def _invert(pack, model, cond, latent: dict, steps: int = 4, method: str = "ddim", eta: float = 0.5,
            denoise: float = 1.0) -> dict:
    return pack("nodes.invert").InvertVideo.execute(model, cond, latent, steps, method, eta, 0.05, 0.2, "after", 1.0,
                                                    1, 0, denoise=denoise).args[0]


def _edit(pack, model, pos, neg, latent: dict, steps: int = 4, cfg: float = 7.5, cfg_start: float = 0.0,
          grid: int = 2, shuffle: bool = True, mask=None, **optional) -> dict:
    return pack("nodes.edit").MaskedCFGSampler.execute(model, pos, neg, latent, steps, cfg, cfg_start, grid, shuffle,
                                                       4, 0, "nearest", 0.5, mask, **optional).args[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_flow_models_are_a_family_with_their_shift(pack, flow_model):
    family_of = pack("nodes.patches.model_family").family_of
    assert family_of(seeded_random_model()).kind == "eps"
    family = family_of(flow_model)
    assert (family.kind, family.shift) == ("flow", 3.0)
    assert family_of(seeded_random_model(model_type="FLOW")).kind == "flow"
    flux = family_of(_flux(seeded_random_model()))
    assert flux.kind == "flow" and flux.shift > 0
    sigmas = family.sampling_sigmas(4)
    assert float(sigmas[0]) == 1.0 and float(sigmas[-1]) == 0.0 and bool((sigmas[:-1] > sigmas[1:]).all())
    assert torch.equal(family.inversion_sigmas(4, method="fireflow"), family.sampling_sigmas(4, method="fireflow").flip(0))
    import comfy.samplers

    core = comfy.samplers.simple_scheduler(flow_model.get_model_object("model_sampling"), 20).float()
    assert torch.allclose(family.sampling_sigmas(20), core, atol=1e-6)   # core's simple when steps divides 1000


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_invert_then_reconstruct_on_a_flow_model_converges_with_the_steps(pack, flow_model, method):
    latent, cond = _latent(2), _cond(2)
    errors = {}
    for steps in (4, 16):
        inv = _invert(pack, flow_model, cond, {"samples": latent}, steps, method)
        record = inv[pack("drive_ops.diffusion.schedule").INVERSION_RECORD_KEY]
        assert (record["family"], record["shift"], record["method"]) == ("flow", 3.0, method)
        assert float(inv["samples"].std()) > 0.5 * float(latent.std())   # noise-like, not collapsed
        rec = _edit(pack, flow_model, cond, cond, inv, steps, cfg=1.0, cfg_start=-1.0, grid=1, shuffle=False)
        errors[steps] = _rel(rec["samples"], latent)
    print(f"flow {method}: invert -> reconstruct relative error", {k: f"{v:.2e}" for k, v in errors.items()})
    assert errors[16] < 0.5 * errors[4] and errors[16] < 0.05, errors


def test_masked_guidance_at_cfg_above_one_runs_with_the_grid_shuffle_on_a_flow_model(pack, flow_model):
    latent, cond, other = _latent(), _cond(2), _cond(3)
    inv = _invert(pack, flow_model, cond, {"samples": latent}, 4, "easyinv")
    edited = _edit(pack, flow_model, other, cond, inv, 4, cfg=7.5, mask=_mask())
    recon = _edit(pack, flow_model, cond, cond, inv, 4, cfg=1.0, cfg_start=-1.0)
    keep = _latent_keep().expand_as(latent)
    assert edited["samples"].shape == latent.shape and bool(torch.isfinite(edited["samples"]).all())
    inside = float((edited["samples"][~keep] - recon["samples"][~keep]).abs().mean())
    outside = float((edited["samples"][keep] - recon["samples"][keep]).abs().mean())
    print(f"cfg 7.5 masked edit vs reconstruction: mean |diff| inside {inside:.3e}, outside {outside:.3e}")
    assert inside > 3 * outside   # guidance acts inside; outside only the model's context reaches


def _random_vae(latent_channels: int = 4):
    """A TAESD-shaped VAE (8x) with random weights (ComfyUI's ops leave them uninitialised)."""
    import comfy.sd
    import comfy.taesd.taesd

    net = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
    with torch.no_grad():
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else torch.nn.init.zeros_(p)
        net.vae_scale.fill_(1.0)
    return comfy.sd.VAE(sd=net.state_dict())


@pytest.mark.parametrize("cfg", [1.0, 5.0])
def test_frames_to_composite_keep_every_background_pixel_on_a_flow_model(pack, flow_model, cfg):
    """VAE Encode -> Invert Video -> Masked-CFG Sampler -> VAE Decode -> Composite Background, on a CONST model."""
    vae = _random_vae()
    frames = torch.rand(T, 8 * H, 8 * W, 3, generator=torch.Generator().manual_seed(5))
    mask = _mask(T)
    cond, other = _cond(2), _cond(3)
    inv = _invert(pack, flow_model, cond, {"samples": vae.encode(frames)}, 4, "fireflow")
    edited = vae.decode(_edit(pack, flow_model, other, cond, inv, 4, cfg=cfg, mask=mask)["samples"])
    out = pack("nodes.composite").CompositeBackground.execute(edited, frames, mask, 0, 0.0, "alpha").args[0]
    outside = mask[..., None].expand_as(frames) == 0
    assert torch.equal(out[outside], frames[outside])
    assert float((out[~outside] - frames[~outside]).abs().max().detach()) > 1e-3


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_masked_edit_at_cfg_one_keeps_every_latent_outside_the_mask_on_the_source_trajectory(pack, flow_model,
                                                                                                method):
    flow = pack("drive_ops.diffusion.flow")
    latent, cond, other = _latent(), _cond(2), _cond(3)
    inv = _invert(pack, flow_model, cond, {"samples": latent}, 4, method)
    family = pack("nodes.patches.model_family").family_of(flow_model)
    source = family.to_model_space(latent)
    noise = flow.trajectory_noise(family.to_model_space(inv["samples"]), source, 1.0)
    seen = []

    def record_inputs(apply_model, args):
        seen.append((args["input"].clone(), float(args["timestep"][0])))
        return apply_model(args["input"], args["timestep"], **args["c"])

    watched = flow_model.clone()
    watched.set_model_unet_function_wrapper(record_inputs)
    out = _edit(pack, watched, other, cond, inv, 4, cfg=1.0, grid=1, shuffle=False, mask=_mask())
    keep = _latent_keep().expand_as(latent)
    assert all(x.shape[0] == T for x, _ in seen)                   # one pass per call: no uncond at cfg 1
    calls = 5 if method == "fireflow" else 4
    assert len(seen) == calls
    for x, sigma in seen:
        expected = flow.source_trajectory(source, noise, sigma)
        assert torch.allclose(x[keep], expected[keep], atol=1e-5), sigma
    assert torch.equal(out["samples"][keep], latent[keep])        # the source, bit for bit, outside the mask
    assert float((out["samples"][~keep] - latent[~keep]).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="records on its output"):
        _edit(pack, flow_model, other, cond, {"samples": inv["samples"]}, 4, cfg=1.0, mask=_mask())


def test_sixteen_channel_latents_in_sd3_format_invert_and_edit_on_grids(pack):
    model = _sixteen_channel_sd3(pack)
    latent, cond, other = _latent(T, 16), _cond(2), _cond(3)
    inv = _invert(pack, model, cond, {"samples": latent}, 4, "fireflow")
    out = _edit(pack, model, other, cond, inv, 4, cfg=4.0, grid=2, shuffle=True, mask=_mask())
    gated = _edit(pack, model, other, cond, inv, 4, cfg=1.0, grid=2, shuffle=True, mask=_mask())
    keep = _latent_keep().expand_as(latent)
    assert out["samples"].shape == gated["samples"].shape == latent.shape
    assert bool(torch.isfinite(out["samples"]).all())
    assert torch.equal(gated["samples"][keep], latent[keep])


def test_schedule_records_refuse_other_families_and_shifts_naming_both(pack, flow_model):
    latent, cond = {"samples": _latent(2)}, _cond(2)
    eps = seeded_random_model()
    from_eps = _invert(pack, eps, cond, latent, 4)
    with pytest.raises(ValueError, match="inverted on an eps-prediction model.*flow-matching model .*shift 3"):
        _edit(pack, flow_model, cond, cond, from_eps, 4, cfg=1.0)
    from_flow = _invert(pack, flow_model, cond, latent, 4)
    with pytest.raises(ValueError, match="inverted on a flow-matching model.*eps-prediction model"):
        _edit(pack, eps, cond, cond, from_flow, 4, cfg=1.0)
    with pytest.raises(ValueError, match="flow shift 3 but the sampler's model has shift 6"):
        _edit(pack, _sd3(seeded_random_model(std=0.05), 6.0), cond, cond, from_flow, 4, cfg=1.0)
    with pytest.raises(ValueError, match="needs a flow-matching model"):
        _invert(pack, eps, cond, latent, 4, "fireflow")
    with pytest.raises(ValueError, match="Pix2Video"):
        _edit(pack, flow_model, cond, cond, from_flow, 4, cfg=1.0, pix2video_weight=10.0)


def test_edm_and_const_variants_are_still_refused_naming_what_is_supported(pack):
    import comfy.model_base

    edm = seeded_random_model(family="sdxl", model_type="EDM")
    cond = [[torch.zeros(1, 77, 2048), {"pooled_output": torch.zeros(1, 1280)}]]
    with pytest.raises(ValueError, match="eps or v prediction.*flow-matching models with CONST sampling"):
        _invert(pack, edm, cond, {"samples": _latent(2)})
    if hasattr(comfy.model_base.ModelType, "IMG_TO_IMG_FLOW"):   # 0.33: x0 output on a flow schedule
        variant = seeded_random_model(model_type="IMG_TO_IMG_FLOW")
        with pytest.raises(ValueError, match="eps or v prediction.*flow-matching models with CONST sampling"):
            _invert(pack, variant, _cond(2), {"samples": _latent(2)})


def test_core_sampling_with_the_pack_samplers_on_a_flow_model(pack, flow_model):
    """The EasyInv SAMPLER on flipped flow sigmas, then core euler back: SamplerCustomAdvanced's path."""
    import comfy.sample
    import comfy.samplers

    samplers = pack("nodes.patches.samplers")
    family = pack("nodes.patches.model_family").family_of(flow_model)
    latent, cond = _latent(2), _cond(2)
    up = family.inversion_sigmas(16)
    noise = comfy.sample.sample_custom(flow_model, torch.zeros_like(latent), 1.0,
                                       samplers.easyinv_sampler(1.0, 0.05, 0.2, "after"), up, cond, cond, latent,
                                       disable_pbar=True, seed=0)
    back = comfy.sample.sample_custom(flow_model, torch.zeros_like(latent), 1.0, samplers.ddim_sampler(),
                                      up.flip(0), cond, cond, noise, disable_pbar=True, seed=0)
    assert _rel(back, latent) < 0.05


def _tiny_flux():
    """ComfyUI's own Flux transformer (double + single stream blocks, 2x2 patchify, RoPE), tiny, random weights."""
    import dataclasses

    import comfy.ldm.flux.model
    import comfy.supported_models

    config = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=32,
                  hidden_size=64, mlp_ratio=2.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[8, 12, 12],
                  theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)
    if "txt_ids_dims" in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}:
        config["txt_ids_dims"] = []   # newer cores (Flux 2's text position ids); Flux 1 has none
    return _random_patcher(comfy.supported_models.Flux, config)


def _random_patcher(model_config_class, config: dict):
    """ComfyUI's model of ``model_config_class`` built from ``config`` with seeded N(0, 0.02) weights, in fp32 on
    the CPU, as a ModelPatcher."""
    import comfy.model_patcher

    model_config = model_config_class(dict(config))
    model_config.unet_config = dict(config)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        base = model_config.get_model({}, "", device=torch.device("cpu"))
        with torch.no_grad():
            for p in base.parameters():
                torch.nn.init.normal_(p, std=0.02)
    return comfy.model_patcher.ModelPatcher(base.float(), load_device=torch.device("cpu"),
                                            offload_device=torch.device("cpu"))


def _flux_cond(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 5, 32, generator=g), {"pooled_output": torch.randn(1, 32, generator=g), "guidance": 3.5}]]


def test_a_flux_transformer_inverts_and_edits_on_shuffled_grids_and_refuses_attention_patches(pack):
    """Grids in latent space: the DiT patchifies the 2x2 grid itself and its position ids follow the grid's size."""
    model = _tiny_flux()
    family = pack("nodes.patches.model_family").family_of(model)
    assert family.kind == "flow"
    latent, cond, other = _latent(T, 16), _flux_cond(1), _flux_cond(2)
    inv = _invert(pack, model, cond, {"samples": latent}, 4, "fireflow")
    recon = _edit(pack, model, cond, cond, inv, 4, cfg=1.0, grid=2, shuffle=True, mask=_mask())
    gated = _edit(pack, model, other, cond, inv, 4, cfg=1.0, grid=2, shuffle=True, mask=_mask())
    guided = _edit(pack, model, other, cond, inv, 4, cfg=3.0, grid=2, shuffle=True, mask=_mask())
    keep = _latent_keep().expand_as(latent)
    assert _rel(recon["samples"], latent) < 0.01
    assert torch.equal(gated["samples"][keep], latent[keep])
    assert float((gated["samples"][~keep] - latent[~keep]).abs().max()) > 1e-3
    assert guided["samples"].shape == latent.shape and bool(torch.isfinite(guided["samples"]).all())
    attention = pack("nodes.patches.attention")
    with pytest.raises(ValueError, match="STEM attention patches UNet models"):
        attention.apply_stem_patch(model)
    with pytest.raises(ValueError, match="Flux transformer has no decoder blocks"):   # cross-frame: "all" works
        attention.apply_cross_frame_patch(model, "pix2video", 0, True, "decoder", 0.0, 1.0)


def _tiny_flux2():
    """ComfyUI's own FLUX.2 transformer (global modulation, 128-channel latents at 16 px per cell, 4-axis RoPE), tiny,
    random weights."""
    import comfy.supported_models

    config = dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=32,
                  hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[8, 8, 8, 8],
                  theta=2000, patch_size=1, qkv_bias=False, guidance_embed=False, txt_ids_dims=[3],
                  global_modulation=True, mlp_silu_act=True, ops_bias=False, default_ref_method="index",
                  ref_index_scale=10.0)
    return _random_patcher(comfy.supported_models.Flux2, config)


@pytest.mark.min_core("0.33.0")
def test_flux2_latents_take_masks_at_sixteen_pixels_per_cell(pack):
    """FLUX.2 encodes 16 px per latent cell: a mask at the frames' size (16x the latent) gates the cfg-1 edit and
    masked CFG, every latent outside it stays the source at cfg 1, and a mask at 8x is refused naming the size."""
    model = _tiny_flux2()
    family = pack("nodes.patches.model_family").family_of(model)
    assert (family.kind, family.latent_factor) == ("flow", 16)
    latent = _latent(T, 128)
    cond = [[torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(s)), {}] for s in (1, 2)]
    mask = torch.zeros(1, 16 * H, 16 * W)
    mask[:, 32:96, 32:96] = 1.0
    inv = _invert(pack, model, [cond[0]], {"samples": latent}, 4, "fireflow")
    gated = _edit(pack, model, [cond[1]], [cond[0]], inv, 4, cfg=1.0, grid=2, shuffle=True, mask=mask)
    guided = _edit(pack, model, [cond[1]], [cond[0]], inv, 4, cfg=3.0, grid=2, shuffle=True, mask=mask)
    keep = _latent_keep().expand_as(latent)
    assert torch.equal(gated["samples"][keep], latent[keep])
    assert not torch.equal(gated["samples"][~keep], latent[~keep])  # random weights at std 0.02: 4e-4 at most
    assert guided["samples"].shape == latent.shape and bool(torch.isfinite(guided["samples"]).all())
    with pytest.raises(ValueError, match="frames of about 128x128 px"):
        _edit(pack, model, [cond[1]], [cond[0]], inv, 4, cfg=1.0, grid=2, shuffle=True, mask=_mask())


def test_fill_backgrounds_keyframe_fill_runs_on_a_flow_model(pack, flow_model):
    """Noise to sigma 1 (CONST noise scaling), Euler under the noise mask: only the hole changes."""
    fill = pack("nodes.keyframe_inpaint").diffusion_keyframe_fill(flow_model, _cond(2), _cond(3), _random_vae(), 4,
                                                                  4.0, 1.0, 0, 1, "telea")
    frame = torch.rand(8 * H, 8 * W, 3, generator=torch.Generator().manual_seed(6))
    hole = torch.zeros(8 * H, 8 * W, dtype=torch.bool)
    hole[24:40, 24:40] = True
    out = fill(frame, hole, 0)
    assert out.shape == frame.shape and bool(torch.isfinite(out).all())
    assert torch.equal(out[~hole], frame[~hole])


def test_patch_nodes_work_with_core_ksampler_on_a_flow_model(pack, flow_model):
    """RAVE Grid Patch + Masked-CFG Patch on a CONST model, sampled by core's euler / simple (KSampler's call)."""
    import comfy.sample

    edit = pack("nodes.edit")
    patched = edit.RAVEGridPatch.execute(flow_model, 2, True, 0, 0).args[0]
    patched = edit.MaskedCFGPatch.execute(patched, _mask(), 0.0, "nearest", 0.5).args[0]
    latent = torch.zeros(T, 4, H, W)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(3))
    runs = [comfy.sample.sample(m, noise, 4, 5.0, "euler", "simple", _cond(3), _cond(2), latent, seed=0,
                                disable_pbar=True) for m in (patched, flow_model)]
    keep = _latent_keep().expand_as(latent)
    assert all(bool(torch.isfinite(r).all()) for r in runs)
    assert float((runs[0][~keep] - runs[1][~keep]).abs().max()) > 1e-3    # the patches changed the sampling


def test_the_flow_test_bed_loads_as_a_const_model_and_recolours_through_the_nodes(pack):
    """The trained flow UNet under core's ModelSamplingSD3: FireFlow inversion reconstructs near the AE bound,
    and Invert Video -> Masked-CFG Sampler (cfg 5) -> VAE Decode -> Composite recolours with the background exact."""
    from quality_edit import skip_without_weights
    from testbed import comfy_wrap, flow, judge, world

    skip_without_weights("flow test bed", flow.missing_flow_files(), flow.FLOW_RETRAIN_COMMAND)
    model, vae = flow.flow_comfy_model(), comfy_wrap.testbed_vae()
    family = pack("nodes.patches.model_family").family_of(model)
    assert (family.kind, family.shift) == ("flow", flow.SHIFT)
    empty = comfy_wrap.testbed_conditioning("")
    shares = []
    for seed in (21, 22, 23):
        clip = world.make_clip(world.HELDOUT_START + seed, frames=4, n_objects=1)
        frames = torch.from_numpy(clip.frames)
        new = next(c for c in ("green", "red", "blue")
                   if c not in (clip.objects[0].colour, clip.scene.background.colour))
        target = comfy_wrap.testbed_conditioning(clip.scene.replace_object(0, colour=new).caption)
        mask = torch.from_numpy(clip.union).float()
        latent = {"samples": vae.encode(frames)}
        inv = _invert(pack, model, empty, latent, 20, "fireflow")
        if seed == 21:
            recon = vae.decode(_edit(pack, model, empty, empty, inv, 20, cfg=1.0, grid=1, shuffle=False)["samples"])
            gap = float(((recon - vae.decode(latent["samples"])) ** 2).mean())
            print(f"flow test bed in ComfyUI: FireFlow 20 steps reconstruction MSE vs the AE round trip {gap:.2e}")
            assert gap < 1e-4
        edited = vae.decode(_edit(pack, model, target, empty, inv, 20, cfg=7.5, grid=1, shuffle=False,
                                  mask=mask)["samples"]).detach()
        out = pack("nodes.composite").CompositeBackground.execute(edited, frames, mask, 0, 0.0, "alpha").args[0]
        outside = mask[..., None].expand_as(frames) == 0
        assert torch.equal(out[outside], frames[outside])
        shares += [judge.colour_fraction(edited[t].numpy(), clip.masks[0, t], new) for t in range(4)]
    print("recoloured share per frame", [round(s, 2) for s in shares])
    assert sum(shares) / len(shares) >= FLOW_EDIT_SHARE_FLOOR, shares


FLOW_EDIT_SHARE_FLOOR = 0.3  # measured 0.45 (mean over the 12 frames, cfg 7.5, FireFlow 20 steps)


@pytest.mark.parametrize("method", ["ddim", "fireflow"])
def test_partial_flow_edits_start_where_the_partial_inversion_ended(pack, flow_model, method):
    latent, cond = _latent(2), _cond(2)
    inv = _invert(pack, flow_model, cond, {"samples": latent}, 16, method, denoise=0.5)
    record = inv[pack("drive_ops.diffusion.schedule").INVERSION_RECORD_KEY]
    family = pack("nodes.patches.model_family").family_of(flow_model)
    assert record["final_sigma"] == pytest.approx(float(family.sampling_sigmas(16, 0.5)[0]))
    assert 0.0 < record["final_sigma"] < 1.0
    rec = _edit(pack, flow_model, cond, cond, inv, 16, cfg=1.0, cfg_start=-1.0, grid=1, shuffle=False, denoise=0.5)
    assert _rel(rec["samples"], latent) < 0.01
    with pytest.raises(ValueError, match="denoise"):
        _edit(pack, flow_model, cond, cond, inv, 16, cfg=1.0, grid=1, shuffle=False, denoise=1.0)
