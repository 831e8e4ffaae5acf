"""In-process ComfyUI check of masked CFG's cfg-1 gate: the uncond UNet pass runs exactly where the result needs it.

Run by tests/integration/test_editing.py with ComfyUI on PYTHONPATH; prints "ALL CHECKS PASSED".
Each case samples twice through the real ``comfy.sample`` path with a tiny SD1.5-shaped
UNet: with the gate (ComfyUI's shortcut kept where allowed) and with the shortcut forced
off (``disable_cfg1_optimization`` on the MODEL, the pack's old behaviour). A UNet wrapper
records which branches every call carried. Where the gate skips uncond the latents agree to
float tolerance (the cond pass alone vs batched with uncond, and ``u + (c - u) * 1`` vs
``c``, round differently); where it must not skip, both runs are the same computation and
agree bit for bit.
"""

from __future__ import annotations

import torch
from comfy_inprocess import load_pack, random_model, start_comfy

start_comfy()
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402

pack = load_pack()
grid_wrapper, cfg_hook, edit_nodes = (pack("nodes.patches.grid_wrapper"), pack("nodes.patches.masked_cfg_hook"),
                                      pack("nodes.edit"))
schedule, inversion = pack("drive_ops.diffusion.schedule"), pack("drive_ops.diffusion.inversion")

torch.set_num_threads(1)
torch.manual_seed(0)
model = random_model()
T, h, w, STEPS = 8, 8, 8, 4
latent = torch.randn(T, 4, h, w, generator=torch.Generator().manual_seed(1))
pos = [[torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(2)), {}]]
neg = [[torch.zeros(1, 77, 768), {}]]
sigmas = schedule.ddim_sampling_sigmas(model.get_model_object("model_sampling").sigmas.float(), STEPS)
ddim = comfy.samplers.KSAMPLER(inversion.sample_ddim)
mask = torch.zeros(1, 8 * h, 8 * w)
mask[:, 16:48, 16:48] = 1.0
TOLERANCE = 1e-5  # relative to the latents' largest magnitude; measured about 1.3e-7


def recorded(m):
    """A clone of ``m`` whose UNet calls log (step, sorted branches); returns (clone, log)."""
    log: list[tuple[int, tuple[int, ...], int]] = []

    def unet(apply_model, a):
        log.append((schedule.step_index(sigmas, a["timestep"]), tuple(sorted(set(a["cond_or_uncond"]))),
                    int(a["input"].shape[0])))
        return apply_model(a["input"], a["timestep"], **a["c"])

    clone = m.clone()
    clone.set_model_unet_function_wrapper(unet)
    return clone, log


def forced_off(m):
    clone = m.clone()
    clone.model_options["disable_cfg1_optimization"] = True
    return clone


def sample(m, cfg=1.0, positive=pos, negative=neg):
    return comfy.sample.sample_custom(m, torch.zeros_like(latent), cfg, ddim, sigmas, positive, negative, latent,
                                      disable_pbar=True, seed=0)


def branches_per_step(log):
    steps: dict[int, set[int]] = {}
    for step, branches, _rows in log:
        steps.setdefault(step, set()).update(branches)
    return [tuple(sorted(steps[s])) for s in sorted(steps)]


def compare(name, gated, reference, exact):
    err = float((gated - reference).abs().max())
    bound = 0.0 if exact else TOLERANCE * float(reference.abs().max())
    print(f"{name}: max abs diff {err:.2e} ({'bit for bit' if exact else f'tolerance {bound:.1e}'})")
    assert err <= bound, (name, err, bound)


# 1. no mask, every step guided (cfg_start -1), grid 2 + shuffle in chunks: one pass per step, cond only
for cfg_start, expected in ((-1.0, [(0,)] * STEPS), (0.0, [(0, 1)] + [(0,)] * (STEPS - 1))):
    # 2. ... with cfg_start 0 the first step is unguided: it returns uncond, so that step keeps the uncond pass
    patched = cfg_hook.apply_masked_cfg_patch(grid_wrapper.apply_grid_patch(model, 2, True, 3, 1), None, cfg_start,
                                              "nearest", 0.5)
    gated_model, log = recorded(patched)
    gated = sample(gated_model)
    assert branches_per_step(log) == expected, (cfg_start, branches_per_step(log))
    reference_model, ref_log = recorded(forced_off(patched))
    reference = sample(reference_model)
    assert branches_per_step(ref_log) == [(0, 1)] * STEPS
    rows, ref_rows = sum(r for *_, r in log), sum(r for *_, r in ref_log)
    print(f"no mask, cfg_start {cfg_start}: {rows} UNet batch rows with the gate, {ref_rows} without")
    assert rows == (STEPS if cfg_start < 0 else STEPS + 1) * 2 and ref_rows == 2 * STEPS * 2  # 2 grids a branch
    compare(f"no mask, cfg_start {cfg_start}", gated, reference, exact=False)

# 3. with a mask the blend reads uncond outside the object at every guided step: no shortcut, same latents
patched = cfg_hook.apply_masked_cfg_patch(model, mask, 0.0, "nearest", 0.5)
gated_model, log = recorded(patched)
gated = sample(gated_model)
assert branches_per_step(log) == [(0, 1)] * STEPS, branches_per_step(log)
compare("mask, cfg 1", gated, sample(forced_off(patched)), exact=True)

# 4. cfg 7.5: the gate changes nothing
patched = cfg_hook.apply_masked_cfg_patch(model, None, -1.0, "nearest", 0.5)
compare("no mask, cfg 7.5", sample(patched, cfg=7.5), sample(forced_off(patched), cfg=7.5), exact=True)

# 5. a second masked-CFG patch with a mask keeps the uncond pass that its own function needs
stacked = cfg_hook.apply_masked_cfg_patch(cfg_hook.apply_masked_cfg_patch(model, mask, -1.0, "nearest", 0.5), None,
                                          -1.0, "nearest", 0.5)
stacked_model, log = recorded(stacked)
compare("stacked patches, cfg 1", sample(stacked_model), sample(forced_off(stacked)), exact=True)
assert branches_per_step(log) == [(0, 1)] * STEPS

# 6. a guider with no negative prompt: a clear error instead of a blend with zeros
guider = comfy.samplers.CFGGuider(cfg_hook.apply_masked_cfg_patch(model, mask, -1.0, "nearest", 0.5))
guider.inner_set_conds({"positive": pos})  # what core's BasicGuider does
try:
    guider.sample(torch.zeros_like(latent), latent, ddim, sigmas, disable_pbar=True, seed=0)
    raise AssertionError("masked CFG without a negative prompt was accepted")
except ValueError as err:
    assert "negative prompt's prediction" in str(err), err

# 7. the one-box sampler with one prompt wired to both inputs: uncond == cond, so one pass per step, and the
#    latents equal those of the same prompt given as two separate objects (the full masked-CFG path)
upstream, log = recorded(model)
same = edit_nodes.MaskedCFGSampler.execute(upstream, pos, pos, {"samples": latent}, STEPS, 7.5, 0.0, 2, True, 4, 0,
                                           "nearest", 0.5, mask).args[0]["samples"]
assert branches_per_step(log) == [(0,)] * STEPS, branches_per_step(log)
twin = [[pos[0][0].clone(), {}]]
full_model, full_log = recorded(model)
full = edit_nodes.MaskedCFGSampler.execute(full_model, pos, twin, {"samples": latent}, STEPS, 7.5, 0.0, 2, True, 4, 0,
                                           "nearest", 0.5, mask).args[0]["samples"]
assert branches_per_step(full_log) == [(0, 1)] * STEPS
compare("one-box, positive is negative, cfg 7.5 + mask", same, full, exact=False)
# 8. auto chunking (max_grids_per_call 0) takes the largest chunk that ComfyUI's own estimate fits into the free
#    memory, counting the branches that actually run: with room for 6 UNet rows, cfg 7.5 sends 3 grids a call
#    (cond + uncond = 6 rows) and cfg 1 without a mask 6 grids (cond only); ComfyUI never splits them again
import comfy.model_management as mm  # noqa: E402

rows_fit = 6
budget = model.model.memory_required([rows_fit, 4, h, w]) * grid_wrapper.MEMORY_SAFETY + 1
real_free = mm.get_free_memory


def tight_free_memory(dev=None, torch_free_too=False):
    return (budget, budget) if torch_free_too else budget


mm.get_free_memory = tight_free_memory
try:
    for cfg, expected in ((7.5, [6, 6, 4]), (1.0, [6, 2])):
        patched = cfg_hook.apply_masked_cfg_patch(grid_wrapper.apply_grid_patch(model, 1, False, 0, 0), None, -1.0,
                                                  "nearest", 0.5)
        watched, log = recorded(patched)
        sample(watched, cfg=cfg)
        per_step = [r for step, _, r in log if step == 0]
        print(f"auto chunking, room for {rows_fit} rows, cfg {cfg}: UNet batches {per_step}")
        assert per_step == expected, (cfg, per_step)
finally:
    mm.get_free_memory = real_free
print("ALL CHECKS PASSED")
