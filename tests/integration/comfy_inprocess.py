"""ComfyUI imported in-process (CPU unless asked otherwise) and random SD1.5-shaped models built from configs.

Shared by tests/integration/editing_inprocess.py and bench/sampler_overhead.py. Needs
ComfyUI's folder on ``sys.path`` (``COMFYUI_DIR``); call :func:`start_comfy` before any
other comfy import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
TINY_UNET = dict(model_channels=32, channel_mult=[1, 2], transformer_depth=[1, 1],
                 transformer_depth_output=[1, 1, 1, 1, 1, 1], num_heads=2, num_head_channels=-1)
SD15_UNET = dict(model_channels=320, channel_mult=[1, 2, 4, 4], transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                 transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], num_heads=8, num_head_channels=-1)


CHECKS_PASSED = "ALL CHECKS PASSED"


def run_checks_script(name: str, timeout: float = 600, extra_paths: tuple[Path, ...] = ()) -> None:
    """Run the in-process script ``name`` of tests/integration in a fresh python (``COMFYUI_PYTHON``, else this
    one) with ComfyUI (and ``extra_paths``) on PYTHONPATH; assert it exits 0 having printed CHECKS_PASSED.

    A subprocess, because importing ComfyUI in-process sets its global args and model state for good.
    """
    script = Path(__file__).with_name(name)
    path = [os.environ["COMFYUI_DIR"], *map(str, extra_paths), os.environ.get("PYTHONPATH")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    done = subprocess.run([python, str(script)], env=env, capture_output=True, text=True, timeout=timeout)
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert CHECKS_PASSED in done.stdout


def start_comfy(cpu: bool = True) -> None:
    """Put ``COMFYUI_DIR`` on the path and set ComfyUI's args without parsing ours."""
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if comfy_dir and comfy_dir not in sys.path:
        sys.path.insert(0, comfy_dir)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = cpu


def start_comfy_on_testbed() -> None:
    """:func:`start_comfy` for tests on the trained test bed; without its weight files the test skips
    (tests/conftest.py turns that skip into a failure in CI) with the command that retrains them."""
    import pytest

    from testbed import load

    missing = load.missing_files()
    if missing:
        pytest.skip(f"testbed weights missing ({', '.join(p.name for p in missing)}); "
                    f"train them with `{load.RETRAIN_COMMAND}`")
    start_comfy()


def load_pack(name: str = "drive_pack"):
    """Import this checkout as a package (its folder name need not be a valid module name)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return lambda sub: importlib.import_module(f"{name}.{sub}")


def unet_config(full: bool) -> dict:
    """SD1.5's UNet config, or a tiny one with the same structure (two levels, cross-attention 768)."""
    shape = SD15_UNET if full else TINY_UNET
    return dict(shape, image_size=32, in_channels=4, out_channels=4, num_res_blocks=2 if full else 1,
                transformer_depth_middle=1, context_dim=768,
                use_spatial_transformer=True, legacy=False, use_linear_in_transformer=False, adm_in_channels=None,
                use_temporal_attention=False, use_temporal_resblock=False)


def random_model(full: bool = False, device: torch.device | None = None, std: float = 0.02, family: str = "sd15",
                 model_type: str = "EPS", dtype: torch.dtype = torch.float32):
    """A ModelPatcher around a model (tiny unless ``full``) with normal(0, std) weights.

    ``family`` "sd15" is SD1.5's UNet (or a tiny one of its structure); "sdxl" a tiny UNet
    with SDXL's conditioning (context 2048, pooled + size ADM) in SDXL's latent space.
    ``model_type`` names a ``comfy.model_base.ModelType`` (EPS, V_PREDICTION, FLOW, EDM, ...):
    the same network under another noise schedule / prediction; ``dtype`` the UNet's weights.
    """
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    device = device or torch.device("cpu")
    config = dict(unet_config(full), dtype=dtype)
    if family == "sdxl":
        config.update(context_dim=2048, adm_in_channels=2816, num_classes="sequential", use_linear_in_transformer=True)
        model_config = comfy.supported_models.SDXL(dict(config, attention_resolutions=None))
        model_class = comfy.model_base.SDXL
    else:
        model_config = comfy.supported_models.SD15(dict(config, attention_resolutions=None))
        model_class = comfy.model_base.BaseModel
    model_config.unet_config = dict(config)
    base = model_class(model_config, model_type=comfy.model_base.ModelType[model_type], device=device)
    with torch.no_grad():
        for p in base.parameters():
            torch.nn.init.normal_(p, std=std)
    return comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=torch.device("cpu"))


def seeded_random_model(**kwargs):
    """``random_model(**kwargs)`` drawn from seed 0 without touching the global RNG's state: the same weights
    whatever ran before."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return random_model(**kwargs)


def random_controlnet(full: bool = False, std: float = 0.02):
    """A comfy ControlNet (pixel hints, 3 channels) matching :func:`random_model`'s UNet."""
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.ops

    config = {k: v for k, v in unet_config(full).items() if k != "out_channels"}
    config.update(hint_channels=3, operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                  device=torch.device("cpu"))
    net = comfy.cldm.cldm.ControlNet(**config)
    with torch.no_grad():
        for p in net.parameters():
            torch.nn.init.normal_(p, std=std)
    return comfy.controlnet.ControlNet(net, load_device=torch.device("cpu"))


def through_controlnet(control, hint: torch.Tensor, text: torch.Tensor) -> list:
    """What CLIP Text Encode -> Apply ControlNet (Advanced) gives for the text embedding ``text`` and ``hint``
    frames ``[T,3,H,W]``: each node makes its own ControlNet copy, so equal chains are different objects."""
    import node_helpers

    applied = control.copy().set_cond_hint(hint, 1.0, (0.0, 1.0))
    return node_helpers.conditioning_set_values([[text.clone(), {}]],
                                                {"control": applied, "control_apply_to_uncond": False})


def counting_unet_rows(model):
    """A clone of ``model`` that adds the batch rows of every UNet call to ``rows[0]``: (clone, rows)."""
    rows = [0]

    def count(apply_model, args):
        rows[0] += args["input"].shape[0]
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted = model.clone()
    counted.set_model_unet_function_wrapper(count)
    return counted, rows
