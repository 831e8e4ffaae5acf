"""In-process ComfyUI checks of Fill Background's diffusion keyframe fill, with tiny random models.

Run by tests/integration/test_fill_background.py with ComfyUI on PYTHONPATH; prints
"ALL CHECKS PASSED" at the end. A tiny SD1.5-shaped UNet (and a 9-channel inpainting
one), a per-frame ControlNet and a random TAESD as the VAE: the pixels they invent mean
nothing, the code paths, what reaches the model, and what must stay untouched are real.
"""

from __future__ import annotations

import copy

import torch
from comfy_inprocess import load_pack, random_controlnet, random_model, start_comfy, unet_config

start_comfy()
import comfy.model_patcher  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.taesd.taesd  # noqa: E402
import node_helpers  # noqa: E402
from fill_scenes import make_scene  # noqa: E402

pack = load_pack()
composite = pack("nodes.composite")
keyframe_inpaint = pack("nodes.keyframe_inpaint")

torch.set_num_threads(1)
torch.manual_seed(0)
scene = make_scene(frames=6, height=64, width=96, with_truth=False)
T, H, W = scene.masks.shape
ARGS = dict(grow=0, flow_quality="auto", keyframe=-1, inpaint_method="telea", steps=3, cfg=4.0, denoise=1.0, seed=5)


def fill(**inputs):
    out = composite.FillBackground.execute(scene.frames, scene.masks, **{**ARGS, **inputs})
    return out.args[0], out.args[1]


def inpainting_model():
    config = dict(unet_config(False), in_channels=9)
    model_config = comfy.supported_models.SD15(dict(config, attention_resolutions=None))
    model_config.unet_config = dict(config)
    base = model_config.get_model({}, "", device=torch.device("cpu"))
    with torch.no_grad():
        for p in base.parameters():
            torch.nn.init.normal_(p, std=0.02)
    return comfy.model_patcher.ModelPatcher(base, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def random_vae():
    """A TAESD-shaped VAE (4 latent channels, 8x) with random weights: ComfyUI's ops leave them uninitialised."""
    net = comfy.taesd.taesd.TAESD(latent_channels=4)
    with torch.no_grad():
        for name, p in net.named_parameters():
            torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else torch.nn.init.zeros_(p)
        net.vae_scale.fill_(1.0)
    return comfy.sd.VAE(sd=net.state_dict())


vae = random_vae()
model = random_model()
hint = torch.rand(T, 3, H, W, generator=torch.Generator().manual_seed(2))
applied = random_controlnet().copy().set_cond_hint(hint, 1.0, (0.0, 1.0))
pos = node_helpers.conditioning_set_values([[torch.randn(1, 77, 768), {}]], {"control": applied})
neg = [[torch.zeros(1, 77, 768), {}]]

# 1. without a model: OpenCV keyframe fill; outside the mask untouched
plain, unrecovered = fill()
outside = scene.masks <= 0.5
assert plain.shape == scene.frames.shape and unrecovered.shape == scene.masks.shape
assert torch.equal(plain[outside], scene.frames[outside]) and unrecovered.sum() > 50
print(f"OpenCV fill: {int(unrecovered.sum())} unseen pixels over {T} frames")

# 2. with a model: the keyframe's unseen area is redrawn, the rest is as before; inputs untouched; reproducible
snapshot = (copy.copy(model.model_options), [dict(e[1]) for e in pos], applied.cond_hint_original)
seen = []


def record(apply_model, a):
    seen.append((tuple(a["input"].shape), a["c"].get("c_concat")))
    return apply_model(a["input"], a["timestep"], **a["c"])


watched = model.clone()
watched.set_model_unet_function_wrapper(record)
filled, unrecovered_m = fill(model=watched, positive=pos, negative=neg, vae=vae)
assert torch.equal(unrecovered_m, unrecovered), "the model changed what counts as unseen"
assert torch.equal(filled[outside], scene.frames[outside])
k = int(unrecovered.flatten(1).sum(1).argmax())
unseen_k = unrecovered[k] > 0.5
assert (filled[k][unseen_k] - plain[k][unseen_k]).abs().mean() > 1e-3, "the model did not redraw the keyframe"
assert torch.equal(filled[k][~unseen_k], plain[k][~unseen_k]), "the model changed pixels other frames showed"
assert len(seen) >= ARGS["steps"] and all(shape[1:] == (4, H // 8, W // 8) for shape, _ in seen), seen
assert model.model_options.keys() == snapshot[0].keys() and [dict(e[1]) for e in pos] == snapshot[1]
assert applied.cond_hint_original is snapshot[2] and applied.cond_hint_original.shape[0] == T
again, _ = fill(model=watched, positive=pos, negative=neg, vae=vae)
assert torch.equal(again, filled), "the same seed gave another fill"
print(f"diffusion fill: keyframe {k} redrawn, {len(seen)} UNet calls, inputs untouched, reproducible")

# 3. a per-frame ControlNet hint is cut to the keyframe's
one = keyframe_inpaint.conditioning_for_frame(pos, 3, T, {})
assert torch.equal(one[0][1]["control"].cond_hint_original, hint[3:4]) and applied.cond_hint_original.shape[0] == T

# 4. an inpainting checkpoint gets the masked keyframe and the mask as extra channels
inpaint = inpainting_model()
assert keyframe_inpaint.is_inpainting_model(inpaint) and not keyframe_inpaint.is_inpainting_model(model)
seen.clear()
watched = inpaint.clone()
watched.set_model_unet_function_wrapper(record)
filled_i, _ = fill(model=watched, positive=neg, negative=neg, vae=vae)
assert torch.equal(filled_i[outside], scene.frames[outside])
assert all(concat is not None and concat.shape[1] == 5 for _, concat in seen), [c is None for _, c in seen]
print("inpainting checkpoint: mask + masked-image channels reach the UNet")

# 5. half the diffusion inputs is a wiring mistake
try:
    fill(model=model, vae=vae)
    raise AssertionError("a model without conditioning was accepted")
except ValueError as err:
    assert "connect positive, negative too" in str(err), err
print("ALL CHECKS PASSED")
