"""Flow ControlNets under the DRIVE grid shuffle, in-process on tiny random Flux and SD3 (ComfyUI's own objects).

Pixel-hint (XLabs) and VAE-encoded (InstantX, its Union with a control type) Flux ControlNets
are built from ComfyUI's ``ControlNetFlux``, the SD3 one from ``comfy.cldm.mmdit.ControlNet``
(VAE-encoded hints, as core's ``load_controlnet_mmdit``), all with random weights and applied
as Apply ControlNet does; the Masked-CFG Sampler runs on shuffled 2x2 grids, one grid per
model call. An outer
``CALC_COND_BATCH`` wrapper records the frames in order, a model wrapper records every grid the
transformer sees and the ControlNet residuals it got. The oracle: core's own per-frame hint
preparation (``get_control`` on the frames in order), tiled by hand wherever the latents'
tiles show each frame went; the residuals must equal those, and a hint tiled in frame order
must differ. All these ControlNet kinds exist on ComfyUI 0.3.64 and 0.33.0.
"""

from __future__ import annotations

import pytest
import torch

from inprocess_fixtures import pack  # noqa: F401 (fixtures)
from test_flow_inprocess import _flux_cond, _invert, _latent, _random_patcher, _random_vae, _tiny_flux

pytestmark = pytest.mark.integration
FRAMES, H, W, GRID = 8, 8, 8, 2


def _flux_config() -> dict:
    """The tiny Flux's shape (tests/integration/test_flow_inprocess.py's ``_tiny_flux``)."""
    import dataclasses

    import comfy.ldm.flux.model

    config = dict(in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=32, hidden_size=64, mlp_ratio=2.0,
                  num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[8, 12, 12], theta=10000, patch_size=2,
                  qkv_bias=True, guidance_embed=True)
    if "txt_ids_dims" in {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}:
        config["txt_ids_dims"] = []
    return config


def _random_flux_controlnet(latent_input: bool, union_modes: int = 0):
    """ComfyUI's ControlNet around a tiny random ``ControlNetFlux``: XLabs' pixel hints, or InstantX's VAE-encoded
    ones in Flux's latent format (a Union with ``union_modes`` control types), as core's loaders build them."""
    import comfy.controlnet
    import comfy.latent_formats
    import comfy.ldm.flux.controlnet
    import comfy.ops

    extra = dict(latent_input=True, control_latent_channels=16, num_union_modes=union_modes) if latent_input else {}
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = comfy.ldm.flux.controlnet.ControlNetFlux(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                                                       device=torch.device("cpu"), **extra, **_flux_config())
        with torch.no_grad():
            for p in net.parameters():
                torch.nn.init.normal_(p, std=0.05)
    if latent_input:
        return comfy.controlnet.ControlNet(net, compression_ratio=1, latent_format=comfy.latent_formats.Flux(),
                                           load_device=torch.device("cpu"), extra_conds=["y", "guidance"])
    return comfy.controlnet.ControlNet(net, load_device=torch.device("cpu"), extra_conds=["y", "guidance"])


def _sd3_config() -> dict:
    """A two-block MMDiT with SD3's layout (16 latent channels, 2x2 patches, pooled + 32-d text; the ControlNet's
    one block feeds the main model's second, as core spreads a ControlNet's blocks over ``depth``)."""
    return dict(in_channels=16, out_channels=16, patch_size=2, depth=2, adm_in_channels=32,
                context_embedder_config={"target": "torch.nn.Linear",
                                         "params": {"in_features": 32, "out_features": 128}},
                pos_embed_max_size=16, num_patches=256, pos_embed_scaling_factor=None, pos_embed_offset=None,
                qk_norm=None, x_block_self_attn_layers=[])


def _tiny_sd3():
    import comfy.supported_models

    return _random_patcher(comfy.supported_models.SD3, _sd3_config())


def _random_sd3_controlnet():
    """ComfyUI's ControlNet around a tiny random SD3 ``cldm.mmdit.ControlNet``, as core's ``load_controlnet_mmdit``."""
    import comfy.cldm.mmdit
    import comfy.controlnet
    import comfy.latent_formats
    import comfy.ops

    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = comfy.cldm.mmdit.ControlNet(num_blocks=1, control_latent_channels=16,
                                          operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                                          device=torch.device("cpu"), **_sd3_config())
        with torch.no_grad():
            for p in net.parameters():
                torch.nn.init.normal_(p, std=0.05)
    latent_format = comfy.latent_formats.SD3()
    latent_format.shift_factor = 0
    return comfy.controlnet.ControlNet(net, compression_ratio=1, latent_format=latent_format,
                                       load_device=torch.device("cpu"))


def _sd3_cond(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 5, 32, generator=g), {"pooled_output": torch.randn(1, 32, generator=g)}]]


def _random_vae16():
    """A TAESD-shaped VAE with Flux's 16 latent channels (8x), random weights from seed 4."""
    with torch.random.fork_rng():
        torch.manual_seed(4)
        return _random_vae(16)


def _hint_frames() -> torch.Tensor:
    """Distinct hint frames [T, 8H, 8W, 3] (IMAGE layout) in [0, 1]."""
    return torch.rand(FRAMES, 8 * H, 8 * W, 3, generator=torch.Generator().manual_seed(7))


def _controlled(cond: list, control, vae=None, control_type: int | None = None) -> list:
    """``cond`` through Apply ControlNet (a copy of ``control`` with the hint frames; SetUnionControlNetType's
    control type when given)."""
    import node_helpers

    applied = control.copy()
    if control_type is not None:
        applied.set_extra_arg("control_type", [control_type])
    applied = applied.set_cond_hint(_hint_frames().movedim(-1, 1), 1.0, (0.0, 1.0), vae=vae)
    return node_helpers.conditioning_set_values(cond, {"control": applied, "control_apply_to_uncond": False})


def _run_recording(pack, model, cond: list, latent: torch.Tensor):
    """Sample on shuffled 2x2 grids (one grid per call); return the frames per step and each call's
    (grid input, sigma, conditioning, cond_or_uncond)."""
    import comfy.patcher_extension

    frames_seen, calls = [], []

    def outer(executor, model_, conds, x_in, timestep, model_options, *args, **kwargs):
        frames_seen.append(x_in.clone())
        return executor(model_, conds, x_in, timestep, model_options, *args, **kwargs)

    def inner(apply_model, args):
        calls.append((args["input"].clone(), args["timestep"].clone(), dict(args["c"]), list(args["cond_or_uncond"])))
        return apply_model(args["input"], args["timestep"], **args["c"])

    recording = model.clone()
    recording.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, "test_frames", outer)
    recording.set_model_unet_function_wrapper(inner)
    pack("nodes.edit").MaskedCFGSampler.execute(recording, cond, cond, {"samples": latent}, 2, 1.0, 0.0, GRID, True,
                                                0, 1, "nearest", 0.5, None)
    return frames_seen, calls


def _tile_sources(grid: torch.Tensor, frames: torch.Tensor) -> list[list[int]]:
    """For one latent grid [C, g*h, g*w]: which frame of ``frames`` [T,C,h,w] sits in each tile (row-major)."""
    h, w = frames.shape[-2:]
    out = []
    for r in range(GRID):
        row = []
        for c in range(GRID):
            tile = grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w]
            hits = [k for k in range(frames.shape[0]) if torch.equal(tile, frames[k])]
            assert len(hits) == 1, f"tile ({r},{c}) is not exactly one frame: {hits}"
            row.append(hits[0])
        out.append(row)
    return out


def _tile(per_frame: torch.Tensor, sources: list[list[int]]) -> torch.Tensor:
    """Per-frame hints [T,C,h,w] tiled by hand into one grid [1,C,g*h,g*w] with ``sources``' frames."""
    return torch.cat([torch.cat([per_frame[k] for k in row], dim=-1) for row in sources], dim=-2)[None]


def _residuals(control, model, x: torch.Tensor, sigma: torch.Tensor, c: dict, n: int, hint: torch.Tensor) -> dict:
    """What ``control`` adds to the transformer for input ``x`` with its hint set to ``hint`` (core's get_control)."""
    ref = control.copy()
    ref.model_sampling_current = model.get_model_object("model_sampling")
    ref.cond_hint = hint
    c = {k: v for k, v in c.items() if k != "control"}
    return ref.get_control(x, sigma, c, n, {})


def _core_frame_hints(control, model, x_frames: torch.Tensor, c: dict) -> torch.Tensor:
    """Core's own hint preparation for the frames in order (upscale, VAE encode, latent format): [T,C,.,.]."""
    ref = control.copy()
    ref.model_sampling_current = model.get_model_object("model_sampling")
    c = {k: (v[:1].expand(x_frames.shape[0], *v.shape[1:]) if torch.is_tensor(v) and v.dim() > 0 else v)
         for k, v in c.items() if k != "control"}
    ref.get_control(x_frames, torch.ones(x_frames.shape[0]), c, 1, {})
    return ref.cond_hint


def _equal_residuals(a: dict, b: dict) -> bool:
    assert any(len(a[k]) for k in a), "the ControlNet added no residuals"
    return all(torch.allclose(x, y, rtol=1e-5, atol=1e-6) for k in a for x, y in zip(a[k], b[k]))


@pytest.mark.parametrize("kind", ["xlabs", "instantx", "instantx-union", "sd3"])
def test_flow_controlnet_hints_follow_the_latents_into_shuffled_grids(pack, kind):
    if kind == "sd3":
        model, control, plain = _tiny_sd3(), _random_sd3_controlnet(), _sd3_cond(1)
    else:
        model, plain = _tiny_flux(), _flux_cond(1)
        control = _random_flux_controlnet(kind != "xlabs", union_modes=4 if kind == "instantx-union" else 0)
    vae = None if kind == "xlabs" else _random_vae16()
    cond = _controlled(plain, control, vae, control_type=2 if kind == "instantx-union" else None)
    latent = _latent(FRAMES, 16)
    inv = _invert(pack, model, plain, {"samples": latent}, 2, "ddim")["samples"]
    frames_seen, calls = _run_recording(pack, model, cond, inv)
    applied = cond[0][1]["control"]
    assert applied.cond_hint is None   # the user's ControlNet is left as it was (the sampler works on copies)
    orders, checked = set(), 0
    grids_per_step = FRAMES // (GRID * GRID)
    for i, (x, sigma, c, cond_or_uncond) in enumerate(calls):
        assert "control" in c and x.shape[0] == 1, "one grid per call, with the ControlNet's residuals"
        frames = frames_seen[i // grids_per_step]
        sources = _tile_sources(x[0], frames)
        orders.add(tuple(k for row in sources for k in row))
        per_frame = _core_frame_hints(applied, model, frames, c)
        got = c["control"]
        expected = _residuals(applied, model, x, sigma, c, len(cond_or_uncond), _tile(per_frame, sources))
        assert _equal_residuals(got, expected), f"call {i}: the residuals are not those of the latents' tiling"
        in_order = [[GRID * r + col + (i % grids_per_step) * GRID * GRID for col in range(GRID)] for r in range(GRID)]
        if sources != in_order:
            wrong = _residuals(applied, model, x, sigma, c, len(cond_or_uncond), _tile(per_frame, in_order))
            assert not _equal_residuals(got, wrong), f"call {i}: a hint in frame order gives the same residuals"
            checked += 1
    assert checked > 0 and len(orders) > 2, "the shuffle must have moved frames between grids"


def test_a_vae_encoded_controlnet_without_its_vae_is_refused_naming_the_fix(pack):
    model = _tiny_flux()
    cond = _controlled(_flux_cond(1), _random_flux_controlnet(True), vae=None)
    inv = _invert(pack, model, _flux_cond(1), {"samples": _latent(FRAMES, 16)}, 2, "ddim")["samples"]
    with pytest.raises(ValueError, match="takes VAE-encoded hints but none was given: use Apply ControlNet with its vae"):
        pack("nodes.edit").MaskedCFGSampler.execute(model, cond, cond, {"samples": inv}, 2, 1.0, 0.0, GRID, True,
                                                    0, 1, "nearest", 0.5, None)
