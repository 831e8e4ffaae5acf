"""The test bed's trained depth ControlNet as ComfyUI's own ControlNet, and the pack's grid shuffle on it.

In a real in-process ComfyUI 0.3.64 on the committed weights (``testbed/weights`` and
``testbed/weights_controlnet``):

- ``comfy_wrap.testbed_controlnet()`` (``comfy.controlnet.ControlNet`` around
  ``comfy.cldm.cldm.ControlNet``) gives the diffusers ControlNet's residuals, through the
  control model alone and through ``get_control`` (VE x, c_in, sigma -> timestep, strength),
  and ComfyUI's UNet with them gives ``testbed.controlnet.ControlledUNet``'s denoised latent;
- under the pack's grid wrapper (shuffled 2x2 grids, a real ``comfy.sample`` run), the
  residuals of every grid equal the diffusers ControlNet's for hints placed tile by tile in
  the order of the latents the grid holds (the order read off the latents themselves).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def bed():
    from comfy_inprocess import start_comfy_on_testbed

    start_comfy_on_testbed()
    from testbed import comfy_wrap, controlnet, load

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from quality_edit import skip_without_weights

    skip_without_weights("testbed ControlNet", controlnet.missing_files(), controlnet.RETRAIN_COMMAND)
    torch.set_num_threads(1)
    return load.load_testbed(), controlnet.load_controlnet(), comfy_wrap


def _clip_hints(frames: int = 4):
    from testbed import controlnet, hints, world

    clip = world.make_clip(world.HELDOUT_START + 5, frames=frames, n_objects=2, occlusion=True)
    return controlnet.hint_tensor(hints.clip_hints(clip)), clip.caption


def _close(a: torch.Tensor, b: torch.Tensor, what: str, rel: float = 1e-5) -> None:
    err = float((a - b).abs().max())
    assert err <= rel * float(b.abs().max()) + 1e-6, f"{what}: max abs diff {err:.3g} (max {float(b.abs().max()):.3g})"


def test_comfy_controlnet_gives_the_diffusers_residuals(bed):
    tb, net, comfy_wrap = bed
    hint, caption = _clip_hints()
    control = comfy_wrap.testbed_controlnet()
    z = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([3, 250, 600, 980])
    context = tb.text_context([caption, "", "a red ball", caption])[0]
    with torch.no_grad():
        down, mid = net(z, t, encoder_hidden_states=context, controlnet_cond=hint, return_dict=False)
        theirs = control.control_model(x=z, hint=hint, timesteps=t.float(), context=context)
    assert len(theirs["output"]) == len(down) == 6
    assert float(mid.abs().max()) > 1e-2, "the trained ControlNet should not be silent"
    for i, (a, b) in enumerate(zip(theirs["output"], down)):
        _close(a, b, f"zero conv {i}")
    _close(theirs["middle"][0], mid, "middle block out")

    # ComfyUI's ControlNet object on its BaseModel: VE x, sigma -> timestep, c_in, strength 0.7
    model = comfy_wrap.testbed_model()
    sampling = model.get_model_object("model_sampling")
    applied = control.copy().set_cond_hint(hint, 0.7, (0.0, 1.0))
    applied.pre_run(model.model, lambda p: sampling.percent_to_sigma(p))
    sigma = sampling.sigmas[t].float()
    x = z * (1 + sigma ** 2).sqrt().view(-1, 1, 1, 1)
    with torch.no_grad():
        got = applied.get_control(x, sigma, {"c_crossattn": context}, 1, {})
        down, mid = net(z, t, encoder_hidden_states=context, controlnet_cond=hint, conditioning_scale=0.7,
                        return_dict=False)
        for i, (a, b) in enumerate(zip(got["output"], down)):
            _close(a, b, f"get_control zero conv {i}", rel=1e-4)
        _close(got["middle"][0], mid, "get_control middle", rel=1e-4)
        denoised = model.model.apply_model(x, sigma, c_crossattn=context, control=got)
        from testbed import controlnet

        unet = controlnet.ControlledUNet(tb.unet, net, 0.7)
        unet.hint = hint
        from dataclasses import replace

        expected = replace(tb, unet=unet).denoiser(context, cfg=1.0)(x, sigma)
    applied.cleanup()
    _close(denoised, expected, "denoised with control", rel=1e-4)


def _tile(images: torch.Tensor) -> torch.Tensor:
    """``[4n, C, H, W]`` -> 2x2 grids ``[n, C, 2H, 2W]``, row-major (written out here, not the pack's tiling)."""
    return images.unflatten(0, (-1, 2, 2)).permute(0, 3, 1, 4, 2, 5).flatten(2, 3).flatten(3, 4)


def test_grid_shuffle_gives_each_tile_its_own_hint(bed):
    tb, net, comfy_wrap = bed
    from comfy_inprocess import load_pack, through_controlnet

    import comfy.sample
    import comfy.samplers

    pack = load_pack()
    grid_wrapper = pack("nodes.patches.grid_wrapper")
    schedule, inversion = pack("drive_ops.diffusion.schedule"), pack("drive_ops.diffusion.inversion")
    frames = 8
    hint, caption = _clip_hints(frames)
    latent = torch.randn(frames, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    control = comfy_wrap.testbed_controlnet()
    positive = through_controlnet(control, hint, tb.text_context(caption)[0])
    negative = through_controlnet(control, hint, tb.text_context("")[0])
    model = comfy_wrap.testbed_model()
    sampling = model.get_model_object("model_sampling")
    sigmas = schedule.ddim_sampling_sigmas(sampling.sigmas.float(), 3)
    start = model.model.process_latent_in(latent)   # what the sampler starts from with zero noise
    calls = []

    def check_first_step(apply_model, a):
        x, sigma = a["input"], a["timestep"]
        if not calls:   # step 0 with zero noise: every tile of the grids is one frame's latent, exactly
            tiles = x.unflatten(2, (2, 8)).unflatten(4, (2, 8)).permute(0, 2, 4, 1, 3, 5).flatten(0, 2)
            order = [next(j for j in range(frames) if torch.equal(tile, start[j])) for tile in tiles]
            placed = _tile(hint[order])
            t = sampling.timestep(sigma).float()
            z = x / (1 + sigma.view(-1, 1, 1, 1) ** 2).sqrt()
            with torch.no_grad():
                down, mid = net(z, t, encoder_hidden_states=a["c"]["c_crossattn"], controlnet_cond=placed,
                                return_dict=False)
                in_frame_order = _tile(hint[[i % frames for i in range(len(order))]])
                unordered, _ = net(z, t, encoder_hidden_states=a["c"]["c_crossattn"], controlnet_cond=in_frame_order,
                                   return_dict=False)
            got = {k: [r.clone() for r in v] for k, v in a["c"]["control"].items()}  # the UNet pops them
            calls.append(dict(order=order, got=got, down=down, mid=mid, unordered=unordered))
        return apply_model(x, sigma, **a["c"])

    patched = grid_wrapper.apply_grid_patch(model, 2, True, 5, 0)
    patched.set_model_unet_function_wrapper(check_first_step)
    comfy.sample.sample_custom(patched, torch.zeros_like(latent), 7.5, comfy.samplers.KSAMPLER(inversion.sample_ddim),
                               sigmas, positive, negative, latent, disable_pbar=True, seed=0)
    first = calls[0]
    assert sorted(set(first["order"])) == list(range(frames)) and first["order"] != sorted(first["order"]), \
        f"the grids should hold every frame, shuffled: {first['order']}"
    assert len(first["got"]["output"]) == len(first["down"]) == 6
    for i, (a, b) in enumerate(zip(first["got"]["output"], first["down"])):
        _close(a, b, f"gridded zero conv {i}", rel=1e-4)
    _close(first["got"]["middle"][0], first["mid"], "gridded middle", rel=1e-4)
    off = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(first["unordered"], first["down"]))
    assert off > 0.1, f"hints in frame order should give other residuals (at most {off:.3g} of the largest)"
