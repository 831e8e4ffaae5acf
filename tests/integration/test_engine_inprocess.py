"""The editing engine's node behaviour inside an in-process ComfyUI 0.3.64, on tiny random-weight UNets.

Model types (eps, v-prediction, SDXL, refused EDM), the inverted latent's schedule
record, noise masks, partial edits, the background prompt, every core sampler under the
patches, and chunked UNet calls for STEM and cross-frame attention. The models are built
from ComfyUI's own configs (``comfy_inprocess.random_model``); the numbers mean nothing,
the code paths and the equalities are the real ones.
"""

from __future__ import annotations

import pytest
import torch

from comfy_inprocess import seeded_random_model

pytestmark = pytest.mark.integration

T, H, W = 4, 8, 8


@pytest.fixture(scope="module")
def comfy_env():
    from comfy_inprocess import load_pack, start_comfy

    start_comfy()
    torch.set_num_threads(1)
    return load_pack()


@pytest.fixture(scope="module")
def pack(comfy_env):
    return comfy_env


@pytest.fixture(scope="module")
def model(comfy_env):
    return seeded_random_model()


@pytest.fixture(scope="module")
def attention_model(comfy_env):
    """Weights large enough (std 0.1) that self-attention visibly shapes the output, in float64: in float32
    the CPU's kernel blocking by batch shape (it differs between AVX2 and AVX-512 machines) made chunked
    cross-frame attention differ from unchunked by 2.5e-5, above the plain UNet's batch noise."""
    return seeded_random_model(std=0.1, dtype=torch.float64)


def _batch_noise(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> float:
    """The float noise of a UNet run in other batch sizes (CPU kernels pick their blocking by shape): the
    bound for 'chunked equals unchunked' at the UNet level (the gathers themselves are exact: unit tests)."""
    return 4.0 * float((a - b).abs().max()) + 1e-6 * float(scale.abs().max())


def _latent(frames: int = T, seed: int = 1) -> torch.Tensor:
    return torch.randn(frames, 4, H, W, generator=torch.Generator().manual_seed(seed))


def _cond(seed: int, dim: int = 768, **options) -> list:
    return [[torch.randn(1, 77, dim, generator=torch.Generator().manual_seed(seed)), options]]


def _mask(frames: int = 1) -> torch.Tensor:
    mask = torch.zeros(frames, 8 * H, 8 * W)
    mask[:, 16:48, 16:48] = 1.0
    return mask


def _invert(pack, model, cond, latent: dict, steps: int = 3, method: str = "ddim", eta: float = 0.5,
            start: float = 0.05, length: float = 0.2, max_grids: int = 0, denoise: float = 1.0) -> dict:
    node = pack("nodes.invert").InvertVideo
    return node.execute(model, cond, latent, steps, method, eta, start, length, "after", 1.0, 1, max_grids,
                        denoise=denoise).args[0]


def _edit(pack, model, pos, neg, latent: dict, steps: int = 3, cfg: float = 7.5, cfg_start: float = 0.0,
          grid: int = 2, shuffle: bool = True, max_grids: int = 0, mask=None, **optional) -> dict:
    node = pack("nodes.edit").MaskedCFGSampler
    return node.execute(model, pos, neg, latent, steps, cfg, cfg_start, grid, shuffle, 4, max_grids, "nearest", 0.5,
                        mask, **optional).args[0]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# --- model types ------------------------------------------------------------------------------------------------

def test_v_prediction_inverts_and_reconstructs_as_exactly_as_eps(pack):
    """cfg 1, the inversion prompt: reconstruction error converges with the steps for both predictions alike."""
    latent, cond = _latent(2), _cond(2)
    errors = {}
    for kind in ("EPS", "V_PREDICTION"):
        m = seeded_random_model(model_type=kind, std=0.05)
        for steps in (6, 24):
            inv = _invert(pack, m, cond, {"samples": latent}, steps)
            rec = _edit(pack, m, cond, cond, inv, steps, cfg=1.0, cfg_start=-1.0, grid=1, shuffle=False)
            errors[kind, steps] = _rel(rec["samples"], latent)
    print("invert -> reconstruct, relative error:", {k: f"{v:.2e}" for k, v in errors.items()})
    for kind in ("EPS", "V_PREDICTION"):
        assert errors[kind, 24] < 0.5 * errors[kind, 6], errors
    assert errors["V_PREDICTION", 24] < 2.0 * errors["EPS", 24] and errors["V_PREDICTION", 24] < 0.05, errors


def test_edm_models_are_refused_naming_what_is_supported(pack):
    """Flow models are accepted (tests/integration/test_flow_inprocess.py); EDM is not."""
    import comfy.sample

    samplers = pack("nodes.patches.samplers")
    latent = _latent(2)
    for m, cond in ((seeded_random_model(family="sdxl", model_type="EDM"), _cond(2, dim=2048, pooled_output=torch.zeros(1, 1280))),):
        with pytest.raises(ValueError, match="eps or v prediction.*flow-matching models with CONST"):
            _invert(pack, m, cond, {"samples": latent})
        with pytest.raises(ValueError, match="eps or v prediction"):
            _edit(pack, m, cond, cond, {"samples": latent})
        sigmas = torch.tensor([0.0, 1.0, 5.0])
        with pytest.raises(ValueError, match="eps or v prediction"):   # the SAMPLER node, with core sampling
            comfy.sample.sample_custom(m, torch.zeros_like(latent), 1.0, samplers.easyinv_sampler(0.5, 0.05, 0.2, "after"),
                                       sigmas, cond, cond, latent, disable_pbar=True, seed=0)


def test_sdxl_gets_easyinv_sdxl_settings_when_left_at_the_defaults(pack):
    import comfy.sample

    samplers = pack("nodes.patches.samplers")
    sdxl = seeded_random_model(family="sdxl")
    cond = _cond(3, dim=2048, pooled_output=torch.zeros(1, 1280))
    latent = {"samples": _latent(2)}

    def invert(m, c, *settings):
        return _invert(pack, m, c, latent, 20, "easyinv", *settings)["samples"]

    defaults = invert(sdxl, cond, 0.5, 0.05, 0.2)
    assert torch.equal(defaults, invert(sdxl, cond, 0.8, 0.85, 0.1))
    assert not torch.allclose(defaults, invert(sdxl, cond, 0.5, 0.05, 0.21), atol=1e-4)   # changed: used as set
    sd15, sd15_cond = seeded_random_model(), _cond(3)
    assert not torch.allclose(invert(sd15, sd15_cond, 0.5, 0.05, 0.2), invert(sd15, sd15_cond, 0.8, 0.85, 0.1),
                              atol=1e-4)
    # the EasyInv SAMPLER node knows the model only at sampling time, and applies the same rule
    flipped = pack("drive_ops.diffusion.schedule").ddim_inversion_sigmas(samplers.sigma_table(sdxl), 20)

    def sampler_run(*settings):
        return comfy.sample.sample_custom(sdxl, torch.zeros_like(latent["samples"]), 1.0,
                                          samplers.easyinv_sampler(*settings, "after"), flipped, cond, cond,
                                          latent["samples"], disable_pbar=True, seed=0)

    assert torch.equal(sampler_run(0.5, 0.05, 0.2), sampler_run(0.8, 0.85, 0.1))
    edited = _edit(pack, sdxl, cond, cond, {"samples": defaults}, 20, mask=_mask())
    assert torch.isfinite(edited["samples"]).all()


# --- the schedule record, noise masks, partial edits ----------------------------------------------------------------

def test_the_inverted_latent_records_its_schedule_and_the_sampler_checks_it(pack, model):
    import nodes as comfy_nodes

    schedule = pack("drive_ops.diffusion.schedule")
    cond, latent = _cond(2), _latent()
    inv = _invert(pack, model, cond, {"samples": latent}, 4, "easyinv", denoise=0.5)
    record = inv[schedule.INVERSION_RECORD_KEY]
    table = pack("nodes.patches.samplers").sigma_table(model)
    assert record["steps"] == 4 and record["denoise"] == 0.5 and record["method"] == "easyinv"
    assert record["final_sigma"] == pytest.approx(float(schedule.ddim_sampling_sigmas(table, 4, denoise=0.5)[0]))
    assert record["source"] is latent
    with pytest.raises(ValueError, match="inverted with 4 steps but the sampler is set to 5; set the sampler's "
                                         "steps to 4"):
        _edit(pack, model, cond, cond, inv, 5, denoise=0.5)
    with pytest.raises(ValueError, match="denoise 0.5 but the sampler is set to denoise 1"):
        _edit(pack, model, cond, cond, inv, 4)
    out = _edit(pack, model, cond, cond, inv, 4, denoise=0.5, mask=_mask())
    assert schedule.INVERSION_RECORD_KEY not in out                 # the edit is no longer an inverted latent
    # no record (a latent from elsewhere, or saved and loaded): no error, the sampler's settings are trusted
    _edit(pack, model, cond, cond, {"samples": inv["samples"]}, 7)
    # core nodes: Set Latent Noise Mask and Latent Upscale copy the dict, so the record travels with them
    assert schedule.INVERSION_RECORD_KEY in comfy_nodes.SetLatentNoiseMask().set_mask(inv, _mask())[0]
    assert schedule.INVERSION_RECORD_KEY in comfy_nodes.LatentUpscale().upscale(inv, "nearest-exact", 64, 64, "disabled")[0]


def test_a_noise_mask_keeps_the_source_latent_outside_it(pack, model):
    import nodes as comfy_nodes

    cond, neg, latent = _cond(2), _cond(5), _latent()
    keep = torch.zeros(1, 8 * H, 8 * W)
    keep[:, :, :32] = 1.0                                        # edit the left half, keep the right half
    inv = _invert(pack, model, cond, {"samples": latent})
    masked = comfy_nodes.SetLatentNoiseMask().set_mask(inv, keep)[0]
    out = _edit(pack, model, _cond(7), neg, masked, mask=_mask())["samples"]
    free = _edit(pack, model, _cond(7), neg, inv, mask=_mask())["samples"]
    assert torch.equal(out[..., 4:], latent[..., 4:])             # the source, bit for bit
    assert torch.equal(out[..., :4], free[..., :4])               # the edit, as without the noise mask
    before = _invert(pack, model, cond, comfy_nodes.SetLatentNoiseMask().set_mask({"samples": latent}, keep)[0])
    assert "noise_mask" in before                                   # a mask set before inversion is kept for the sampler
    assert torch.equal(_edit(pack, model, _cond(7), neg, before, mask=_mask())["samples"], out)
    with pytest.raises(ValueError, match="decodes as noise"):
        _edit(pack, model, _cond(7), neg, {"samples": inv["samples"], "noise_mask": keep}, mask=_mask())


def test_partial_edit_inverts_the_head_and_samples_the_tail(pack, model):
    cond, latent = _cond(2), _latent()
    errors = {}
    for denoise in (1.0, 0.5):
        inv = _invert(pack, model, cond, {"samples": latent}, 8, "easyinv", denoise=denoise)
        rec = _edit(pack, model, cond, cond, inv, 8, cfg=1.0, cfg_start=-1.0, grid=1, shuffle=False, denoise=denoise)
        errors[denoise] = _rel(rec["samples"], latent)
    print("partial edit reconstruction error:", errors)      # measured: 0.045 for both
    assert errors[0.5] < 0.06 and errors[1.0] < 0.06


# --- background prompt ----------------------------------------------------------------------------------------------

def test_background_prompt_drives_the_outside_through_the_nodes(pack, model):
    """The nodes' path (grid wrapper + masked-CFG hook with a background) equals the pure-PyTorch step model."""
    import comfy.sample

    masked_cfg, inversion = pack("drive_ops.diffusion.masked_cfg"), pack("drive_ops.diffusion.inversion")
    schedule, hook = pack("drive_ops.diffusion.schedule"), pack("nodes.patches.masked_cfg_hook")
    grid_wrapper, samplers = pack("nodes.patches.grid_wrapper"), pack("nodes.patches.samplers")
    pos, neg, bg = _cond(2), _cond(5), _cond(9)
    latent = _latent()
    sigmas = schedule.ddim_sampling_sigmas(samplers.sigma_table(model), 3)
    mask = _mask(T)
    base = model.model
    contexts = [c[0][0] for c in (pos, neg, bg)]

    def branch(x, s, which):
        return base.apply_model(x, s, c_crossattn=contexts[which].expand(x.shape[0], -1, -1))

    for grid, cfg_start in ((2, 0.0), (1, -1.0)):
        patched = hook.apply_masked_cfg_patch(grid_wrapper.apply_grid_patch(model, grid, True, 4, 1), mask, cfg_start,
                                              "nearest", 0.5, bg)
        nodes_out = comfy.sample.sample_custom(patched, torch.zeros_like(latent), 7.5, samplers.ddim_sampler(), sigmas,
                                               pos, neg, latent, disable_pbar=True, seed=0)
        step_model = masked_cfg.guided_denoiser(branch, sigmas, 7.5, masked_cfg.mask_to_latent(mask, H, W), cfg_start,
                                                grid, True, 4, 1, background=True)   # _edit's seed is 4
        reference = base.process_latent_out(inversion.sample_ddim(step_model, base.process_latent_in(latent), sigmas))
        assert _rel(nodes_out, reference) < 1e-5, (grid, _rel(nodes_out, reference))
        one_box = _edit(pack, model, pos, neg, {"samples": latent}, 3, 7.5, cfg_start, grid, True, 1, mask,
                        background=bg)["samples"]
        assert _rel(one_box, reference) < 1e-5
    plain = _edit(pack, model, pos, neg, {"samples": latent}, mask=mask)["samples"]
    assert torch.equal(_edit(pack, model, pos, neg, {"samples": latent}, mask=mask, background=neg)["samples"], plain)
    assert not torch.allclose(_edit(pack, model, pos, neg, {"samples": latent}, mask=mask, background=bg)["samples"],
                              plain, atol=1e-4)
    # the patch node, for core samplers: the same run
    patch = pack("nodes.edit").MaskedCFGPatch.execute(grid_wrapper.apply_grid_patch(model, 2, True, 4, 0), mask, 0.0,
                                                      "nearest", 0.5, bg).args[0]
    via_patch = comfy.sample.sample_custom(patch, torch.zeros_like(latent), 7.5, samplers.ddim_sampler(), sigmas,
                                           pos, neg, latent, disable_pbar=True, seed=0)
    one_box = _edit(pack, model, pos, neg, {"samples": latent}, mask=mask, background=bg)["samples"]
    assert _rel(via_patch, one_box) < 1e-5


# --- samplers under the patches -------------------------------------------------------------------------------------

def test_every_core_sampler_runs_once_per_step_or_gets_the_packs_error(pack, model):
    """Through RAVE Grid Patch (shuffle) + Masked CFG Patch (cfg_start 0) into core sampling: a sampler either
    evaluates the model exactly once at each scheduled sigma, in order, or is refused with the pack's message."""
    import comfy.patcher_extension
    import comfy.sample
    import comfy.samplers

    edit = pack("nodes.edit")
    patched = edit.RAVEGridPatch.execute(model, 2, True, 3, 0).args[0]
    patched = edit.MaskedCFGPatch.execute(patched, _mask(), 0.0, "nearest", 0.5).args[0]
    calls: list[float] = []

    def probe(executor, x, timestep, model_options, *args, **kwargs):
        calls.append(float(timestep[0]))
        return executor(x, timestep, model_options, *args, **kwargs)

    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, "test_probe", probe)
    latent, steps = _latent(), 4
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(5))
    outcome = {}
    for name in comfy.samplers.KSampler.SAMPLERS:
        calls.clear()
        try:
            out = comfy.sample.sample(patched, noise, steps, 5.0, name, "normal", _cond(2), _cond(5), latent,
                                      disable_pbar=True, seed=1)
        except ValueError as err:
            assert "once per step" in str(err) and "heun" in str(err), (name, err)
            outcome[name] = "refused"
            continue
        assert torch.isfinite(out).all(), name
        sigmas = comfy.samplers.KSampler(patched, steps, "cpu", name, "normal").sigmas   # some drop the penultimate
        assert torch.allclose(torch.tensor(calls), sigmas[:-1].float(), rtol=1e-4), (name, calls)
        outcome[name] = "ok"
    print("core samplers under the patches:", outcome)
    refused = {n for n, o in outcome.items() if o == "refused"}
    assert {"heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde"} <= refused
    assert {"ddim", "euler", "euler_ancestral", "dpmpp_2m", "lcm", "uni_pc"}.isdisjoint(refused)
    once, twice = pack("nodes.patches.step_guard").core_samplers()      # the message's lists are what happens
    assert refused == set(twice) and set(outcome) - refused == set(once)
    # without shuffle and with cfg_start -1 nothing depends on the step: heun is fine there
    fixed = edit.MaskedCFGPatch.execute(edit.RAVEGridPatch.execute(model, 2, False, 3, 0).args[0], _mask(), -1.0,
                                        "nearest", 0.5).args[0]
    comfy.sample.sample(fixed, noise, 2, 5.0, "heun", "normal", _cond(2), _cond(5), latent, disable_pbar=True, seed=1)


# --- chunked UNet calls ---------------------------------------------------------------------------------------------

def test_stem_chunked_equals_unchunked_whatever_the_free_memory(pack, attention_model, monkeypatch):
    import comfy.model_management
    import comfy.sample

    attention, grid_wrapper, samplers = (pack(f"nodes.patches.{m}") for m in ("attention", "grid_wrapper", "samplers"))
    schedule = pack("drive_ops.diffusion.schedule")
    model = attention_model
    cond, latent = _cond(2), _latent(6)
    sigmas = schedule.ddim_inversion_sigmas(samplers.sigma_table(model), 2)

    def invert(chunk_frames: int | None, max_grids: int):
        stem = model if chunk_frames is None else attention.apply_stem_patch(model, num_bases=16,
                                                                             chunk_frames=chunk_frames, seed=3)
        patched = grid_wrapper.apply_grid_patch(stem, 1, False, 0, max_grids)
        return comfy.sample.sample_custom(patched, torch.zeros_like(latent), 1.0, samplers.inversion_sampler("ddim"),
                                          sigmas, cond, cond, latent, disable_pbar=True, seed=0)

    real_free = comfy.model_management.get_free_memory

    def scarce(dev=None, torch_free_too=False):
        """One byte free for the grid wrapper's sizing; attention's own memory probe is left alone."""
        return real_free(dev, True) if torch_free_too else 1

    plain = invert(None, 0)
    bound = _batch_noise(invert(None, 2), plain, plain)
    whole = {c: invert(c, 0) for c in (0, 2)}
    effect = float((whole[2] - whole[0]).abs().max())               # frame groups do change the bases
    print(f"STEM: batch-size noise bound {bound:.2e}, groups-of-2 vs whole-clip bases {effect:.2e}")
    assert effect > 100 * bound
    for max_grids in (2, 3, 4):                                    # calls of 2, 2 and 4 frames: whole groups
        assert float((invert(2, max_grids) - whole[2]).abs().max()) <= bound, max_grids
    for chunk_frames in (0, 2):
        with monkeypatch.context() as low:                         # little free memory: auto sizing would chunk
            low.setattr(comfy.model_management, "get_free_memory", scarce)
            assert float((invert(chunk_frames, 0) - whole[chunk_frames]).abs().max()) <= bound, chunk_frames
    with pytest.raises(ValueError, match="max_grids_per_call 2 splits them"):
        invert(0, 2)
    with pytest.raises(ValueError, match="max_grids_per_call 1 splits STEM's 2-frame groups"):
        invert(2, 1)
    with pytest.raises(ValueError, match="splits them"):
        _invert(pack, model, cond, {"samples": latent}, 2, "stem", max_grids=2)


@pytest.mark.parametrize("mode,anchor", [("pix2video", 0), ("sparse_causal", 2), ("anchor_only", 5), ("pix2video", 3)])
def test_cross_frame_attention_chunked_equals_unchunked(pack, attention_model, mode, anchor):
    consistency = pack("nodes.consistency")
    model = attention_model
    patched = consistency.CrossFrameAttention.execute(model, mode, anchor, False, "all", 0.0, 1.0).args[0]
    pos, neg, latent = _cond(2), _cond(5), {"samples": _latent(6)}

    def run(m, max_grids: int) -> torch.Tensor:
        return _edit(pack, m, pos, neg, latent, 2, cfg_start=-1.0, grid=1, shuffle=False, max_grids=max_grids,
                     mask=_mask())["samples"]

    whole, plain = run(patched, 0), run(model, 0)
    effect = float((whole - plain).abs().max())
    for max_grids in (1, 2, 4):
        bound = _batch_noise(run(model, max_grids), plain, plain)
        assert effect > 100 * bound
        assert float((run(patched, max_grids) - whole).abs().max()) <= bound, (max_grids, mode, anchor)
    with pytest.raises(RuntimeError, match="re-batched"):
        _edit(pack, patched, pos, neg, latent, 2, grid=2, shuffle=True, mask=_mask())
