"""The pack's samplers as ComfyUI SAMPLER objects, the models they follow, and the one-box nodes' run.

Each factory gives a :class:`ModelCheckedSampler`, a ``comfy.samplers.KSAMPLER`` that
asks ``model_family`` for the model's family before the first step (refusing models the
pack's maths cannot follow) and lets the family pick the k-diffusion function of
``drive_ops.diffusion``: DDIM / EasyInv on eps and v models, Euler / FireFlow on flow
models. :func:`run_sampler` is the sampling call Invert Video and Masked-CFG Sampler
share (zero noise, copied conditioning, a progress bar per step), and Fill Background's
keyframe inpainting (with noise).
"""

from __future__ import annotations

from typing import Callable

import comfy.sample
import comfy.samplers
import comfy.utils
import torch

from ...drive_ops.diffusion import flow
from ...drive_ops.diffusion.cond_grid import copy_conditioning
from ...drive_ops.diffusion.pix2video import GUIDED_FRACTION
from ..frame_previews import core_preview_off, with_clip_previews
from ..progress import cancellable
from .model_family import ModelFamily, family_of

Choice = Callable[[ModelFamily], tuple[Callable, dict]]


class ModelCheckedSampler(comfy.samplers.KSAMPLER):
    """A KSAMPLER whose k-diffusion function the model's family chooses when sampling starts.

    ``choose(family) -> (function, options)``: a SAMPLER node has no MODEL input, so this is
    where the family (eps / v / flow, SDXL's EasyInv settings) is known. With zero noise the
    latent is already at ``sigmas[0]`` (an inverted latent): the run starts from it as it
    is and returns the latent at ``sigmas[-1]`` as it is, for every family (the flow
    parameterisation's noise scaling would scale it, and divide by zero at sigma 1).
    """

    def __init__(self, choose: Choice):
        super().__init__(None, {})
        self.choose = choose

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        base = model_wrap.inner_model
        function, options = self.choose(family_of(base))
        callback = with_clip_previews(callback, base, noise.device)
        plain = comfy.samplers.KSAMPLER(function, options, self.inpaint_options)
        if latent_image is None or bool(noise.any()):
            return plain.sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                                disable_pbar)
        extra_args["denoise_mask"] = denoise_mask
        model_k = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image, model_k.noise = latent_image, noise
        steps = len(sigmas) - 1
        k_callback = None if callback is None else (
            lambda step: callback(step["i"], step["denoised"], step["x"], steps))
        return function(model_k, latent_image.clone(), sigmas, extra_args=extra_args, callback=k_callback,
                        disable=disable_pbar, **options)


def ddim_sampler():
    """Deterministic DDIM (eta 0) along decreasing sigmas: Euler on the velocity on flow models."""
    return ModelCheckedSampler(lambda family: family.sampling_function("ddim"))


def edit_sampler(method: str, pix2video_weight: float = 0.0, steps: int | None = None,
                 keep_source: tuple[torch.Tensor, torch.Tensor] | None = None):
    """The sampler for a latent inverted with ``method``: DDIM / Euler, FireFlow, or Pix2Video.

    ``keep_source`` = (source latent as in the LATENT, latent mask [T,h,w]) keeps the area
    outside the mask on the source's trajectory (the masked flow edit at cfg 1).
    """
    def choose(family: ModelFamily) -> tuple[Callable, dict]:
        function, options = family.sampling_function(method, pix2video_weight, steps)
        if keep_source is not None:
            source, mask = keep_source
            function = flow.masked_sampler(function, family.to_model_space(source), mask)
        return function, options

    return ModelCheckedSampler(choose)


def inversion_sampler(method: str, eta: float = 1.0, window_start: float = 0.0, window_length: float = 0.0,
                      blend: str = "after", schedule_steps: int = 1):
    """The inversion sampler of ``method`` (ddim, easyinv, stem's ddim, fireflow) for the model's family."""
    return ModelCheckedSampler(lambda family: family.inversion_function(
        "ddim" if method == "stem" else method, eta, window_start, window_length, blend, schedule_steps))


def easyinv_sampler(eta: float, window_start: float, window_length: float, blend: str,
                    schedule_steps: int | None = None):
    """DDIM inversion with EasyInv's latent blending, for increasing sigmas (Euler with the blend on flow models).

    Settings left at SD1.x's defaults become SDXL's on an SDXL model
    (``inversion.easyinv_settings``); ``schedule_steps`` is the full schedule the window is
    a fraction of (a partial inversion runs its head; by default the sigmas given).
    """
    def choose(family: ModelFamily) -> tuple[Callable, dict]:
        function, options = family.inversion_function("easyinv", eta, window_start, window_length, blend,
                                                      schedule_steps or 0)
        if schedule_steps is None:
            options = dict(options, schedule_steps=None)
        return function, options

    return ModelCheckedSampler(choose)


def pix2video_sampler(weight: float, guided_fraction: float = GUIDED_FRACTION, anchor: int = 0,
                      schedule_steps: int | None = None):
    """DDIM with Pix2Video's latent guidance toward the previous frame's predicted x0 (eps / v models)."""
    def choose(family: ModelFamily) -> tuple[Callable, dict]:
        function, options = family.sampling_function("ddim", weight, schedule_steps)
        return function, dict(options, guided_fraction=guided_fraction, anchor=anchor)

    return ModelCheckedSampler(choose)


def sigma_table(model) -> torch.Tensor:
    """The model's training sigmas (float32, CPU), to build DDIM schedules from; refuses unsupported models."""
    family_of(model)
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
