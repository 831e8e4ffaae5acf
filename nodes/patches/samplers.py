"""The pack's samplers as ComfyUI SAMPLER objects, the models they follow, and the one-box nodes' run.

Each factory wraps a k-diffusion-style function of ``drive_ops.diffusion`` in a
:class:`ModelCheckedSampler`, a ``comfy.samplers.KSAMPLER`` that refuses models whose
noise schedule the pack's DDIM maths cannot follow (flow matching, EDM, ...) before the
first step. :func:`run_sampler` is the sampling call Invert Video and Masked-CFG Sampler
share (zero noise, copied conditioning, a progress bar per step), and Fill Background's
keyframe inpainting (with noise).
"""

from __future__ import annotations

from typing import Callable

import comfy.latent_formats
import comfy.model_sampling
import comfy.sample
import comfy.samplers
import comfy.utils
import torch

from ...drive_ops.diffusion import inversion
from ...drive_ops.diffusion.cond_grid import copy_conditioning
from ...drive_ops.diffusion.pix2video import GUIDED_FRACTION, sample_pix2video
from ..frame_previews import core_preview_off, with_clip_previews
from ..progress import cancellable

SUPPORTED_MODELS = ("discrete-schedule models with eps or v prediction (SD1.x, SD2.x, SDXL and their fine-tunes, "
                    "v-prediction ones included)")


def prediction_type(model_sampling) -> str | None:
    """The prediction of a discrete DDPM-schedule model: "eps" or "v_prediction"; None for flow, EDM, x0 and others."""
    ms = comfy.model_sampling
    discrete = isinstance(model_sampling, ms.ModelSamplingDiscrete) and not isinstance(
        model_sampling, (ms.ModelSamplingDiscreteEDM, ms.StableCascadeSampling))
    if not discrete or isinstance(model_sampling, (ms.EDM, ms.X0)):
        return None
    if isinstance(model_sampling, ms.V_PREDICTION):
        return "v_prediction"
    return "eps" if isinstance(model_sampling, ms.EPS) else None


def check_supported(base_model) -> str:
    """The prediction type of a comfy BaseModel, or a ValueError that says what the pack supports."""
    kind = prediction_type(base_model.model_sampling)
    if kind is None:
        sampling = "/".join(c.__name__ for c in type(base_model.model_sampling).__bases__)
        raise ValueError(f"this model ({type(base_model.model_config).__name__}, sampling {sampling}) is not one the "
                         f"DRIVE inversion and samplers can follow: they support {SUPPORTED_MODELS}. Flow-matching "
                         "models (SD3, Flux, CONST sampling) and EDM models are refused; use an SD1.5, SD2 or SDXL "
                         "checkpoint")
    return kind


def is_sdxl(base_model) -> bool:
    """Whether the model works in SDXL's latent space (SDXL and its distillations): EasyInv's SDXL settings apply."""
    return isinstance(base_model.latent_format, comfy.latent_formats.SDXL)


class ModelCheckedSampler(comfy.samplers.KSAMPLER):
    """A KSAMPLER that checks the model before sampling and may fit its options to it.

    ``for_model(base_model) -> dict`` (optional) updates the sampler's options once the
    model is known: a SAMPLER node has no MODEL input, so this is where EasyInv's SDXL
    defaults are chosen.
    """

    def __init__(self, sampler_function: Callable, extra_options: dict | None = None,
                 for_model: Callable | None = None):
        super().__init__(sampler_function, extra_options or {})
        self.for_model = for_model

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        base = model_wrap.inner_model
        check_supported(base)
        options = dict(self.extra_options)
        if self.for_model is not None:
            options.update(self.for_model(base))
        plain = comfy.samplers.KSAMPLER(self.sampler_function, options, self.inpaint_options)
        callback = with_clip_previews(callback, base, noise.device)
        return plain.sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)


def ddim_sampler():
    """Deterministic DDIM (eta 0) along decreasing sigmas."""
    return ModelCheckedSampler(inversion.sample_ddim)


def ddim_inversion_sampler():
    """Plain DDIM inversion along increasing (flipped) sigmas."""
    return ModelCheckedSampler(inversion.sample_ddim_inversion)


def easyinv_sampler(eta: float, window_start: float, window_length: float, blend: str,
                    schedule_steps: int | None = None):
    """DDIM inversion with EasyInv's latent blending, for increasing sigmas.

    Settings left at SD1.x's defaults become SDXL's on an SDXL model
    (``inversion.easyinv_settings``); ``schedule_steps`` is the full schedule the window is
    a fraction of (a partial inversion runs its head).
    """
    def for_model(base_model) -> dict:
        e, start, length = inversion.easyinv_settings(eta, window_start, window_length, is_sdxl(base_model))
        return {"eta": e, "window_start": start, "window_length": length}

    return ModelCheckedSampler(inversion.sample_easyinv, {"blend": blend, "schedule_steps": schedule_steps},
                               for_model)


def pix2video_sampler(weight: float, guided_fraction: float = GUIDED_FRACTION, anchor: int = 0,
                      schedule_steps: int | None = None):
    """DDIM with Pix2Video's latent guidance toward the previous frame's predicted x0."""
    return ModelCheckedSampler(sample_pix2video, {"weight": weight, "guided_fraction": guided_fraction,
                                                  "anchor": anchor, "schedule_steps": schedule_steps})


def sigma_table(model) -> torch.Tensor:
    """The model's training sigmas (float32, CPU), to build DDIM schedules from; refuses unsupported models."""
    check_supported(model.model)
    return model.get_model_object("model_sampling").sigmas.float().cpu()


def step_progress(steps: int) -> Callable:
    """A sampler callback that only moves a progress bar of ``steps`` (previews come from the sampler itself)."""
    bar = comfy.utils.ProgressBar(steps)

    def step(i, x0, x, total_steps) -> None:
        bar.update_absolute(i + 1, total_steps)

    return step


def run_sampler(model, positive, negative, latent: dict, cfg: float, sampler, sigmas: torch.Tensor,
                seed: int, noise: torch.Tensor | None = None) -> dict:
    """comfy.sample with a progress bar per step; zero noise by default (the latent is already at sigmas[0]).

    With ``noise`` the clean latent is noised to ``sigmas[0]`` first, as img2img does, and a
    ``noise_mask`` is handed to ComfyUI (inpainting). With zero noise it is not (it would pin
    the outside to the starting latent); the nodes decide what it means. The other keys are kept.
    """
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    memo: dict = {}
    positive, negative = copy_conditioning(positive, memo), copy_conditioning(negative, memo)
    callback = cancellable(step_progress(len(sigmas) - 1))
    noise_mask = None if noise is None else latent.get("noise_mask")
    noise = torch.zeros_like(samples) if noise is None else noise
    with core_preview_off():  # the pack's samplers preview every frame instead (nodes/frame_previews.py)
        out = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative,
                                         samples, noise_mask=noise_mask, callback=callback,
                                         disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = {k: v for k, v in latent.items() if k != "samples"}
    result["samples"] = out
    return result
