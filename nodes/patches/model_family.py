"""The one place where what differs between eps / v-prediction UNets and flow-matching models is chosen.

:func:`family_of` reads a MODEL's sampling type (``model_sampling``) and latent format
and returns a :class:`ModelFamily`, or refuses the model with the message that names
what the pack supports. The family then decides, for every node and patch:
- the schedule: the pack's DDIM grid on the discrete sigma table (eps / v), or the
  model's own flow sigmas ``percent_to_sigma(i / steps)`` (any shift, SD3's or Flux's
  shift function), with FireFlow's midpoints interleaved;
- the inversion and sampling functions of ``drive_ops.diffusion`` for each method;
- what an inverted latent records about the schedule (kind, shift) and how a sampler
  checks it;
- the masked edit at cfg 1: eps models blend the negative prompt's prediction outside
  the mask (masked CFG, one uncond pass), flow models keep the source trajectory outside
  the mask (no uncond pass: guidance-distilled models run at cfg 1);
- the pixels per latent cell a pixel mask is fitted to (8, or 16 for FLUX.2's patchified
  latents): :func:`latent_factor_of` gives it for any model, a patch included;
- the pixel frames per latent frame (1 for image latents, 4 for Wan's video latents
  ``[B,16,T',h,w]``): :func:`temporal_stride_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import comfy.latent_formats
import comfy.model_sampling
import torch

from ...drive_ops.diffusion import flow, inversion, schedule
from ...drive_ops.diffusion.pix2video import sample_pix2video

SUPPORTED_MODELS = ("discrete-schedule models with eps or v prediction (SD1.x, SD2.x, SDXL and their fine-tunes, "
                    "v-prediction ones included) and flow-matching models with CONST sampling at any shift (SD3.x, "
                    "Flux, Qwen-Image, Z-Image, Chroma, HiDream, AuraFlow and similar)")
EPS_METHODS = ("easyinv", "ddim", "stem")
FLOW_METHODS = EPS_METHODS + ("fireflow",)
"""Inversion methods per family; on flow models ddim / easyinv / stem are Euler on the velocity (DDIM is Euler in
sigma), with EasyInv's blend or STEM attention, and fireflow is FireFlow's midpoint solver."""


def _kind(model_sampling) -> str | None:
    """"eps", "v_prediction" or "flow" for a sampling object the pack's maths follows; None otherwise."""
    ms = comfy.model_sampling
    if isinstance(model_sampling, ms.CONST):
        schedules = tuple(getattr(ms, name) for name in ("ModelSamplingDiscreteFlow", "ModelSamplingFlux")
                          if hasattr(ms, name))
        kind = type(model_sampling)
        plain = (getattr(model_sampling, "noise_scale", 1.0) == 1.0  # CONST's own maths, not a variant's
                 and all(getattr(kind, name) is getattr(ms.CONST, name)
                         for name in ("calculate_input", "calculate_denoised", "noise_scaling")))
        return "flow" if isinstance(model_sampling, schedules) and plain else None
    discrete = isinstance(model_sampling, ms.ModelSamplingDiscrete) and not isinstance(
        model_sampling, (ms.ModelSamplingDiscreteEDM, ms.StableCascadeSampling))
    if not discrete or isinstance(model_sampling, (ms.EDM, ms.X0)):
        return None
    if isinstance(model_sampling, ms.V_PREDICTION):
        return "v_prediction"
    return "eps" if isinstance(model_sampling, ms.EPS) else None


@dataclass(frozen=True)
class ModelFamily:
    """How the pack runs on one model: its kind ("eps", "v_prediction", "flow") and flow shift."""
    kind: str
    shift: float | None
    model_sampling: object = field(compare=False, repr=False)
    latent_format: object = field(compare=False, repr=False)

    @property
    def flow(self) -> bool:
        return self.kind == "flow"

    @property
    def name(self) -> str:
        if self.flow:
            return f"a flow-matching model (CONST sampling, shift {self.shift:g})"
        return "an eps-prediction model" if self.kind == "eps" else "a v-prediction model"

    @property
    def latent_factor(self) -> int:
        """Pixels per latent cell along each side (8 for SD, SDXL, SD3 and Flux; 16 for FLUX.2's patchified latents)."""
        return _format_factor(self.latent_format)

    @property
    def temporal_stride(self) -> int | None:
        """Pixel frames per latent frame of the latent format: 1 for image models, 4 for Wan 2.1 / 2.2 video latents
        ``[B,C,T',h,w]`` (``T = 4(T'-1) + 1``); None for a video format whose stride the core does not say."""
        return _format_stride(self.latent_format)

    @property
    def sdxl(self) -> bool:
        """SDXL's latent space (SDXL and its distillations): EasyInv's SDXL settings apply."""
        return isinstance(self.latent_format, comfy.latent_formats.SDXL)

    @property
    def methods(self) -> tuple[str, ...]:
        return FLOW_METHODS if self.flow else EPS_METHODS

    def check_method(self, method: str) -> None:
        if method not in self.methods:
            raise ValueError(f"inversion method {method!r} needs a flow-matching model, and this is {self.name}; "
                             f"use one of {', '.join(self.methods)}")

    # ---- schedules
    def _flow_sigmas(self, steps: int, denoise: float) -> torch.Tensor:
        """Descending flow sigmas of the last ``partial_steps(steps, denoise)`` of ``steps`` uniform steps in time."""
        run = schedule.partial_steps(steps, denoise)
        full = torch.tensor([float(self.model_sampling.percent_to_sigma(i / steps)) for i in range(steps + 1)],
                            dtype=torch.float32)
        return full[steps - run:]

    def sampling_sigmas(self, steps: int, denoise: float = 1.0, method: str = "ddim") -> torch.Tensor:
        """The sigmas a sampler runs after an inversion with ``method`` (FireFlow's with its midpoints)."""
        if not self.flow:
            return schedule.ddim_sampling_sigmas(self.model_sampling.sigmas.float().cpu(), steps, denoise=denoise)
        sigmas = self._flow_sigmas(steps, denoise)
        return flow.with_midpoints(sigmas) if method == "fireflow" else sigmas

    def inversion_sigmas(self, steps: int, denoise: float = 1.0, method: str = "ddim") -> torch.Tensor:
        """Increasing sigmas from the clean latent (0) for inversion with ``method``."""
        if not self.flow:
            return schedule.ddim_inversion_sigmas(self.model_sampling.sigmas.float().cpu(), steps, denoise=denoise)
        return self.sampling_sigmas(steps, denoise, method).flip(0)

    def schedule_steps(self, steps: int, method: str) -> int:
        """Model-call points per full schedule: ``steps``, twice that with FireFlow's midpoints."""
        return 2 * steps if self.flow and method == "fireflow" else steps

    # ---- samplers (k-diffusion functions and their options)
    def inversion_function(self, method: str, eta: float, window_start: float, window_length: float, blend: str,
                           steps: int) -> tuple:
        """(function, options) that invert with ``method``; EasyInv's window is a fraction of ``steps``."""
        self.check_method(method)
        if method == "fireflow":
            return flow.sample_fireflow, {}
        if self.flow:
            blend_options = dict(eta=eta, window_start=window_start, window_length=window_length,
                                 schedule_steps=steps) if method == "easyinv" else {}
            return flow.sample_flow_inversion, blend_options
        if method == "easyinv":
            e, start, length = inversion.easyinv_settings(eta, window_start, window_length, self.sdxl)
            return inversion.sample_easyinv, dict(eta=e, window_start=start, window_length=length, blend=blend,
                                                  schedule_steps=steps)
        return inversion.sample_ddim_inversion, {}

    def sampling_function(self, method: str, pix2video_weight: float = 0.0, steps: int | None = None) -> tuple:
        """(function, options) that sample a latent inverted with ``method``: DDIM / Euler, FireFlow, Pix2Video."""
        if pix2video_weight > 0:
            if self.flow:
                raise ValueError(f"Pix2Video's latent guidance follows eps models' sigmas, and this is {self.name}; "
                                 "set pix2video_weight to 0")
            return sample_pix2video, {"weight": pix2video_weight, "schedule_steps": steps}
        if self.flow and method == "fireflow":
            return flow.sample_fireflow, {}
        return inversion.sample_ddim, {}

    # ---- what an inverted latent records
    def record_fields(self) -> dict:
        return {"family": self.kind, "shift": self.shift}

    def check_record(self, record: dict | None) -> None:
        """Raise when an inverted latent came from another kind of model or another flow shift."""
        if record is None or "family" not in record:
            return
        if record["family"] != self.kind:
            inverted = ModelFamily(record["family"], record.get("shift"), None, None).name
            raise ValueError(f"this latent was inverted on {inverted} but the sampler's model is {self.name}: "
                             "their noise schedules differ, so sampling would not start where the inversion "
                             "ended; invert and sample with the same model")
        if self.flow and abs(float(record["shift"]) - float(self.shift)) > 1e-6:
            raise ValueError(f"this latent was inverted with flow shift {record['shift']:g} but the sampler's model "
                             f"has shift {self.shift:g}; give both nodes the same model (the same ModelSampling "
                             "node and shift)")

    def to_model_space(self, latent: torch.Tensor) -> torch.Tensor:
        """A LATENT's samples in the units the sampler works in (the latent format's process_in)."""
        return self.latent_format.process_in(latent)


def _format_factor(latent_format) -> int:
    """Pixels per latent cell along each side of a latent format: its ``spacial_downscale_ratio`` (newer cores), 8
    where the core does not say (every format 0.3.64 has is 8x)."""
    return int(getattr(latent_format, "spacial_downscale_ratio", 8))


def _format_stride(latent_format) -> int | None:
    """Pixel frames per latent frame of a latent format: its ``temporal_downscale_ratio`` for video latents (3 latent
    dimensions; newer cores say it), 4 for Wan 2.1 / 2.2 latents on cores that do not say, 1 for image latents;
    None for another video format on such a core (unknown)."""
    if getattr(latent_format, "latent_dimensions", 2) != 3:
        return 1
    stride = getattr(latent_format, "temporal_downscale_ratio", None)
    if stride is None and isinstance(latent_format, getattr(comfy.latent_formats, "Wan21", ())):
        stride = 4
    return None if stride is None else int(stride)


def _latent_format_of(model):
    """A MODEL's latent format (ModelPatcher, its patches included, or BaseModel)."""
    if hasattr(model, "get_model_object"):
        return model.get_model_object("latent_format")
    return getattr(model, "model", model).latent_format


def temporal_stride_of(model) -> int | None:
    """Pixel frames per latent frame of a MODEL's latent format (ModelPatcher or BaseModel), as
    :attr:`ModelFamily.temporal_stride`, for any model (no refusal of its sampling)."""
    return _format_stride(_latent_format_of(model))


def latent_factor_of(model) -> int:
    """Pixels per latent cell of a MODEL's latent format (ModelPatcher or BaseModel), as
    :attr:`ModelFamily.latent_factor`, for any model (no refusal)."""
    return _format_factor(_latent_format_of(model))


def family_of(model) -> ModelFamily:
    """The :class:`ModelFamily` of a MODEL (ModelPatcher, its model-sampling patches included) or a BaseModel.

    Raises the ValueError that says what the pack supports for any other model.
    """
    base = getattr(model, "model", model)
    if hasattr(model, "get_model_object"):
        sampling, latent_format = model.get_model_object("model_sampling"), model.get_model_object("latent_format")
    else:
        sampling, latent_format = base.model_sampling, base.latent_format
    kind = _kind(sampling)
    if kind is None:
        bases = "/".join(c.__name__ for c in type(sampling).__bases__)
        raise ValueError(f"this model ({type(base.model_config).__name__}, sampling {bases}) is not one the DRIVE "
                         f"inversion and samplers can follow: they support {SUPPORTED_MODELS}. EDM, x0 and other "
                         "schedules are refused; use one of those models (or a ModelSampling node that gives one)")
    shift = float(sampling.shift) if kind == "flow" else None
    return ModelFamily(kind, shift, sampling, latent_format)
