"""In-process ComfyUI checks of the editing patches with a tiny SD1.5-shaped UNet and ControlNet.

Run by tests/integration/test_editing.py with ComfyUI on PYTHONPATH; prints
"ALL CHECKS PASSED" at the end (check 5 proves bench/quality.py's pure-PyTorch step model equal to
the nodes' own path; check 6 that Invert Video applies a ControlNet on its conditioning). Random
weights: the numbers mean nothing, the code paths, shapes and equalities are the real ones.
"""

from __future__ import annotations

import copy

import torch
from comfy_inprocess import load_pack, random_controlnet, random_model, start_comfy

start_comfy()
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import node_helpers  # noqa: E402

pack = load_pack()
grid_wrapper, invert, edit_nodes = pack("nodes.patches.grid_wrapper"), pack("nodes.invert"), pack("nodes.edit")
rave_grid = pack("drive_ops.diffusion.rave_grid")
schedule, inversion = pack("drive_ops.diffusion.schedule"), pack("drive_ops.diffusion.inversion")

torch.set_num_threads(1)
torch.manual_seed(0)
model = random_model()
control_net = random_controlnet()

T, h, w = 8, 8, 8
latent = torch.randn(T, 4, h, w, generator=torch.Generator().manual_seed(1))
hint = torch.rand(T, 8 * h, 8 * w, 3, generator=torch.Generator().manual_seed(2))
applied = control_net.copy().set_cond_hint(hint.movedim(-1, 1), 1.0, (0.0, 1.0))
pos = node_helpers.conditioning_set_values([[torch.randn(1, 77, 768), {}]], {"control": applied})
neg = node_helpers.conditioning_set_values([[torch.zeros(1, 77, 768), {}]], {"control": applied})
table = model.get_model_object("model_sampling").sigmas.float()
sigmas = schedule.ddim_sampling_sigmas(table, 3)
ddim = comfy.samplers.KSAMPLER(inversion.sample_ddim)


def sample(m, positive=pos, negative=neg, cfg=5.0):
    return comfy.sample.sample_custom(m, torch.zeros_like(latent), cfg, ddim, sigmas, positive, negative, latent,
                                      disable_pbar=True, seed=0)


# 1. grid 1 with shuffle and chunks == stock ComfyUI (hints must follow the permutation frame by frame)
stock = sample(model)
gridded = sample(grid_wrapper.apply_grid_patch(model, 1, True, 7, 3))
err = float((stock - gridded).abs().max())
print(f"controlnet: stock vs grid1+shuffle+chunks(3): max abs diff {err:.2e}")
assert err < 1e-4 * float(stock.abs().max()) + 1e-6, err

# 2. grid 2: the hint the ControlNet sees is the gridded hint of the same permutation
seen = []


def log_hint(apply_model, a):
    step = schedule.step_index(sigmas, a["timestep"])
    frame_hint = hint.movedim(-1, 1)  # already at latent*8, so ComfyUI's resize is the identity
    expected = rave_grid.compose_grids(frame_hint, rave_grid.grid_permutation(T, 2, 11, step), 2)
    got = applied.cond_hint
    seen.append((tuple(a["input"].shape), tuple(got.shape)))
    assert torch.equal(got[: expected.shape[0]].float(), expected.float()), "hint grid does not match the latents"
    return apply_model(a["input"], a["timestep"], **a["c"])


patched = grid_wrapper.apply_grid_patch(model, 2, True, 11, 0)
patched.set_model_unet_function_wrapper(log_hint)
out2 = sample(patched)
print("controlnet grid 2: (UNet input, hint) shapes per call:", seen)
assert all(s == ((4, 4, 2 * h, 2 * w), (4, 3, 16 * h, 16 * w)) for s in seen), seen
assert applied.cond_hint is None and torch.equal(applied.cond_hint_original, hint.movedim(-1, 1))

# 3. the one-box nodes (also with a background prompt carrying the ControlNet) leave MODEL, CONDITIONING and
# ControlNet as they were, also when a run is cut short
snapshot = (copy.copy(model.model_options), {k: dict(v) for k, v in model.wrappers.items()},
            [dict(e[1]) for e in pos], [dict(e[1]) for e in neg], applied.cond_hint, applied.cond_hint_original,
            applied.previous_controlnet, applied.strength)
mask = torch.zeros(1, 8 * h, 8 * w)
mask[:, 16:48, 16:48] = 1.0
inv = invert.InvertVideo.execute(model, pos, {"samples": latent}, 3, "easyinv", 0.5, 0.05, 0.6, "after", 1.0, 2, 1)
edit = edit_nodes.MaskedCFGSampler.execute(model, pos, neg, inv.args[0], 3, 7.5, 0.0, 2, True, 4, 1, "nearest", 0.5,
                                        mask)
assert edit.args[0]["samples"].shape == latent.shape
background = node_helpers.conditioning_set_values([[torch.randn(1, 77, 768), {}]], {"control": applied})
edit_bg = edit_nodes.MaskedCFGSampler.execute(model, pos, neg, inv.args[0], 3, 7.5, 0.0, 2, True, 4, 1, "nearest",
                                              0.5, mask, background=background)
assert torch.isfinite(edit_bg.args[0]["samples"]).all()
assert not torch.allclose(edit_bg.args[0]["samples"], edit.args[0]["samples"], atol=1e-4)


class Cancelled(Exception):
    pass


calls = []


def cancel_on_second_call(apply_model, a):
    calls.append(1)
    if len(calls) == 2:
        raise Cancelled()
    return apply_model(a["input"], a["timestep"], **a["c"])


upstream = model.clone()
upstream.set_model_unet_function_wrapper(cancel_on_second_call)
up_options = copy.copy(upstream.model_options)
try:
    edit_nodes.MaskedCFGSampler.execute(upstream, pos, neg, inv.args[0], 3, 7.5, 0.0, 2, True, 4, 1, "nearest", 0.5, mask)
    raise AssertionError("the cancel did not propagate")
except Cancelled:
    pass
assert upstream.model_options.keys() == up_options.keys() and not upstream.wrappers
after = (model.model_options, model.wrappers, [e[1] for e in pos], [e[1] for e in neg], applied.cond_hint,
         applied.cond_hint_original, applied.previous_controlnet, applied.strength)
assert after[0].keys() == snapshot[0].keys() and after[1] == snapshot[1], "the upstream MODEL changed"
assert after[2] == snapshot[2] and after[3] == snapshot[3], "the upstream CONDITIONING changed"
assert after[4] is snapshot[4] and after[5] is snapshot[5] and after[6] is snapshot[6] and after[7] == snapshot[7]
print("upstream MODEL / CONDITIONING / ControlNet unchanged after runs and a cancelled run")

# 4. clear errors
try:
    edit_nodes.MaskedCFGSampler.execute(model, pos, neg, inv.args[0], 3, 7.5, 0.0, 2, True, 4, 1, "nearest", 0.5,
                                     torch.zeros(3, 8 * h, 8 * w))
    raise AssertionError("a 3-frame mask for 8 frames was accepted")
except ValueError as err_frames:
    assert "3 frames but the video has 8" in str(err_frames), err_frames
heun = comfy.samplers.sampler_object("dpm_2")
try:
    comfy.sample.sample_custom(grid_wrapper.apply_grid_patch(model, 2, True, 0, 0), torch.zeros_like(latent), 5.0, heun,
                               sigmas, pos, neg, latent, disable_pbar=True, seed=0)
    raise AssertionError("dpm_2 was accepted under the grid")
except ValueError as err_sampler:
    assert "heun" in str(err_sampler), err_sampler

# 5. the pure-PyTorch step model bench/quality.py measures (masked_cfg.guided_denoiser) is the nodes' path:
# grid wrapper + masked-CFG hook inside comfy.sample give the same latents, per grid layout and CFG schedule
masked_cfg, cfg_hook = pack("drive_ops.diffusion.masked_cfg"), pack("nodes.patches.masked_cfg_hook")
contexts = {0: pos[0][0], 1: neg[0][0]}
plain_pos, plain_neg = [[contexts[0], {}]], [[contexts[1], {}]]
pixel_mask = mask.expand(T, -1, -1)
base = model.model


def branch(x, s, which):
    return base.apply_model(x, s, c_crossattn=contexts[which].expand(x.shape[0], -1, -1))


for grid, shuffle, per_call, cfg_start in ((2, True, 1, 0.0), (1, False, 0, -1.0), (3, True, 0, 0.4)):
    patched = cfg_hook.apply_masked_cfg_patch(grid_wrapper.apply_grid_patch(model, grid, shuffle, 5, per_call),
                                              pixel_mask, cfg_start, "nearest", 0.5)
    nodes_out = sample(patched, plain_pos, plain_neg, cfg=7.5)
    step_model = masked_cfg.guided_denoiser(branch, sigmas, 7.5, mask=masked_cfg.mask_to_latent(pixel_mask, h, w),
                                            cfg_start=cfg_start, grid_size=grid, shuffle=shuffle, seed=5,
                                            max_grids_per_call=per_call)
    reference = base.process_latent_out(inversion.sample_ddim(step_model, base.process_latent_in(latent), sigmas))
    err = float((nodes_out - reference).abs().max())
    print(f"guided_denoiser vs nodes' path (grid {grid}, shuffle {shuffle}, cfg_start {cfg_start}): "
          f"max abs diff {err:.2e}")
    assert err < 1e-4 * float(nodes_out.abs().max()) + 1e-6, err

# 6. Invert Video applies a ControlNet on its conditioning (the main workflow's Canny one), at grid 1 as there:
# strength 1 changes the inverted latents, strength 0 gives exactly the plain inversion
def invert_with(conditioning):
    return invert.InvertVideo.execute(model, conditioning, {"samples": latent}, 3, "easyinv", 0.5, 0.05, 0.6, "after",
                                      1.0, 1, 0).args[0]["samples"]


plain_inv = invert_with(plain_pos)
controlled = {strength: invert_with(node_helpers.conditioning_set_values(plain_pos, {
    "control": control_net.copy().set_cond_hint(hint.movedim(-1, 1), strength, (0.0, 1.0))}))
    for strength in (1.0, 0.0)}
moved, kept = (float((controlled[s] - plain_inv).abs().max()) for s in (1.0, 0.0))
print(f"Invert Video with a ControlNet: max abs change {moved:.3e} at strength 1, {kept:.3e} at strength 0")
assert moved > 1e-3 * float(plain_inv.abs().max()), "the inversion ignored the ControlNet"
assert kept < 1e-5 * float(plain_inv.abs().max()) + 1e-7, kept
print("ALL CHECKS PASSED")
