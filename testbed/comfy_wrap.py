"""The trained testbed as real in-process ComfyUI objects (MODEL, VAE, CONDITIONING).

Only usable with ComfyUI importable (its folder on ``sys.path`` and its args set, e.g. by
``tests/integration/comfy_inprocess.start_comfy()``); comfy is imported inside the functions.

    from comfy_inprocess import start_comfy
    start_comfy()
    from testbed import comfy_wrap
    model = comfy_wrap.testbed_model()                  # comfy ModelPatcher (SD15 model config)
    vae = comfy_wrap.testbed_vae()                      # comfy.sd.VAE: vae.encode(IMAGE) -> raw LATENT
    positive = comfy_wrap.testbed_conditioning("a green ball on a blue striped background")
    negative = comfy_wrap.testbed_conditioning("")      # the unconditional prompt

- :func:`testbed_model`: a ``ModelPatcher`` around ``comfy.model_base.BaseModel`` built from
  ``comfy.supported_models.SD15`` (discrete eps-prediction, scaled-linear schedule, SD15 latent
  format with scale 0.18215) with :data:`testbed.models.COMFY_UNET_CONFIG`; its
  ``diffusion_model`` holds the trained diffusers UNet's weights converted with
  ``comfy.utils.unet_to_diffusers``. LATENTs given to ComfyUI samplers are raw AE latents.
- :func:`testbed_vae`: a real ``comfy.sd.VAE`` with the trained autoencoder (diffusers keys
  converted by ComfyUI itself; config passed explicitly since ComfyUI's detection assumes
  SD's channel widths). ``encode(IMAGE [T,H,W,3]) -> LATENT [T,4,H/8,W/8]`` (posterior mean),
  ``decode(LATENT) -> IMAGE``.
- :func:`testbed_conditioning`: ``[[context [1,16,128], {"pooled_output": pooled [1,128]}]]``
  from the trained text encoder. There is no comfy CLIP object: nodes that take
  CONDITIONING get it from here.
- :func:`testbed_controlnet`: ComfyUI's own ``comfy.controlnet.ControlNet`` around a
  ``comfy.cldm.cldm.ControlNet`` with the test bed's depth ControlNet (``testbed/controlnet.py``,
  diffusers keys converted by :func:`diffusers_to_comfy_controlnet`); apply it as ComfyUI's
  Apply ControlNet does (``control.copy().set_cond_hint(hints [T,3,H,W], strength, (0, 1))``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import controlnet, load, models, vocab


def comfy_unet_config() -> dict:
    """:data:`testbed.models.COMFY_UNET_CONFIG` (a copy)."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in models.COMFY_UNET_CONFIG.items()}


def diffusers_to_comfy_unet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Diffusers ``UNet2DConditionModel`` keys -> ComfyUI ``UNetModel`` keys (every key mapped, or ``KeyError``)."""
    import comfy.utils

    config = comfy_unet_config()
    config["num_res_blocks"] = [config["num_res_blocks"]] * len(config["channel_mult"])
    mapping = comfy.utils.unet_to_diffusers(config)  # diffusers key -> comfy key
    missing = sorted(set(state) - set(mapping))
    if missing:
        raise KeyError(f"diffusers UNet keys with no ComfyUI counterpart: {missing[:8]} ({len(missing)} in all)")
    return {mapping[k]: v for k, v in state.items()}


def diffusers_to_comfy_controlnet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Diffusers ``ControlNetModel`` keys -> ComfyUI ``cldm.ControlNet`` keys (every key mapped, or ``KeyError``).

    The copied UNet blocks map as the UNet's do (``comfy.utils.unet_to_diffusers``); the
    output convs ``controlnet_down_blocks.N`` -> ``zero_convs.N.0``, ``controlnet_mid_block`` ->
    ``middle_block_out.0``; the hint encoder's convs (``conv_in``, ``blocks.0..``, ``conv_out``)
    -> ``input_hint_block.{0, 2, ..}`` (cldm interleaves them with SiLUs).
    """
    import comfy.utils

    config = comfy_unet_config()
    config["num_res_blocks"] = [config["num_res_blocks"]] * len(config["channel_mult"])
    unet_keys = comfy.utils.unet_to_diffusers(config)
    hint_convs = ["conv_in"] + [f"blocks.{i}" for i in range(2 * (len(controlnet.HINT_CHANNELS) - 1))] + ["conv_out"]
    special = {"controlnet_mid_block": "middle_block_out.0"}
    special.update({f"controlnet_cond_embedding.{name}": f"input_hint_block.{2 * i}"
                    for i, name in enumerate(hint_convs)})
    out, missing = {}, []
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if key in unet_keys:
            out[unet_keys[key]] = value
        elif module in special:
            out[f"{special[module]}.{param}"] = value
        elif module.startswith("controlnet_down_blocks."):
            out[f"zero_convs.{module.split('.')[1]}.0.{param}"] = value
        else:
            missing.append(key)
    if missing:
        raise KeyError(f"diffusers ControlNet keys with no ComfyUI counterpart: {missing[:8]} ({len(missing)} in all)")
    return out


def testbed_controlnet(weights_dir: Path | str = controlnet.CONTROLNET_DIR, device: torch.device | None = None,
                       check: bool = True):
    """ComfyUI's ``comfy.controlnet.ControlNet`` holding the test bed's trained depth ControlNet (float32).

    The control model is ``comfy.cldm.cldm.ControlNet`` with the test bed's UNet config and
    ``hint_channels=3``; every weight is loaded (strict), so a layout change fails here.
    """
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.ops
    from safetensors.torch import load_file

    weights_dir = Path(weights_dir)
    if check:
        controlnet.check_file(weights_dir)
    device = device or torch.device("cpu")
    config = comfy_unet_config()
    config.pop("out_channels")
    model = comfy.cldm.cldm.ControlNet(hint_channels=3, dtype=torch.float32, device=device,
                                       operations=comfy.ops.disable_weight_init, **config)
    state = {k: v.float() for k, v in load_file(str(weights_dir / controlnet.CONTROLNET_FILE)).items()}
    model.load_state_dict(diffusers_to_comfy_controlnet(state), strict=True)
    model = model.to(torch.float32).eval()
    return comfy.controlnet.ControlNet(model, load_device=device, manual_cast_dtype=None)


def testbed_model(weights_dir: Path | str = load.WEIGHTS_DIR, device: torch.device | None = None,
                  check: bool = True):
    """A ComfyUI MODEL (``ModelPatcher``) whose UNet is the trained testbed UNet, float32."""
    import comfy.model_patcher
    import comfy.supported_models
    from safetensors.torch import load_file

    weights_dir = Path(weights_dir)
    if check:
        load.check_files(weights_dir)
    device = device or torch.device("cpu")
    config = comfy_unet_config()
    model_config = comfy.supported_models.SD15(dict(config))
    model_config.unet_config = dict(config)  # SD15's extra config would set 8 heads
    base = model_config.get_model({}, "", device=device)
    state = {k: v.float() for k, v in load_file(str(weights_dir / load.FILES["unet"])).items()}
    base.diffusion_model.load_state_dict(diffusers_to_comfy_unet(state), strict=True)
    base = base.to(torch.float32).eval()
    return comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=torch.device("cpu"))


def vae_config() -> dict:
    """``comfy.sd.VAE(config=...)`` of the testbed autoencoder (ComfyUI's LDM ``AutoencoderKL``)."""
    ch = models.AE_CONFIG["block_out_channels"]
    ddconfig = dict(double_z=True, z_channels=models.AE_CONFIG["latent_channels"], resolution=64, in_channels=3,
                    out_ch=3, ch=ch[0], ch_mult=[c // ch[0] for c in ch],
                    num_res_blocks=models.AE_CONFIG["layers_per_block"], attn_resolutions=[], dropout=0.0)
    return {"params": {"embed_dim": models.AE_CONFIG["latent_channels"], "ddconfig": ddconfig}}


def testbed_vae(weights_dir: Path | str = load.WEIGHTS_DIR, check: bool = True):
    """A real ``comfy.sd.VAE`` holding the trained autoencoder (float32); every key loaded, or ``RuntimeError``."""
    import comfy.sd
    from comfy import diffusers_convert
    from safetensors.torch import load_file

    weights_dir = Path(weights_dir)
    if check:
        load.check_files(weights_dir)
    raw = {k: v.float() for k, v in load_file(str(weights_dir / load.FILES["autoencoder"])).items()}
    state = diffusers_convert.convert_vae_state_dict(raw)
    vae = comfy.sd.VAE(sd=state, config=vae_config(), dtype=torch.float32)
    expected = set(vae.first_stage_model.state_dict())
    missing, unused = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unused:
        raise RuntimeError(f"ComfyUI's VAE does not match the testbed autoencoder: missing {missing[:8]}, "
                           f"unused {unused[:8]}; vae_config() is out of step with models.AE_CONFIG")
    return vae


_TEXT: dict[str, models.TextEncoder] = {}  # per weights folder: a workflow builds many conditionings


def _text_encoder(weights_dir: Path, check: bool) -> models.TextEncoder:
    key = str(weights_dir)
    if key not in _TEXT:
        if check:
            load.check_files(weights_dir)
        te = models.build_text_encoder()
        _TEXT[key] = load.load_weights(te, weights_dir / load.FILES["text_encoder"]).eval().requires_grad_(False)
    return _TEXT[key]


@torch.no_grad()
def testbed_conditioning(caption: str, weights_dir: Path | str = load.WEIGHTS_DIR, check: bool = True) -> list:
    """ComfyUI CONDITIONING of ``caption`` (``""`` = unconditional): ``[[context, {"pooled_output": pooled}]]``."""
    context, pooled = _text_encoder(Path(weights_dir), check)(vocab.tokenize(caption))
    return [[context, {"pooled_output": pooled}]]
