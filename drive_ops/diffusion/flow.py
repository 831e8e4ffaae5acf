"""Flow-matching (rectified-flow) inversion, sampling and the masked cfg-1 edit, as k-diffusion samplers.

ComfyUI's CONST parameterisation: ``x_s = (1 - s) * x0 + s * noise`` for ``s`` in [0, 1],
and the model wrapper returns the denoised ``x0`` estimate ``D``; the velocity
``dx/ds = noise - x0`` is ``v = (x - D) / s``. Every sampler has the signature
``fn(model, x, sigmas, extra_args, callback, disable, **options)`` with ``x`` ``[B,C,h,w]``
(any channel count) and 1-D ``sigmas``; inversion runs along increasing sigmas (0 -> 1).

- Euler: sampling is ``x + (s' - s) * v(x, s)``, the same update as DDIM in sigma
  (``inversion.sample_ddim``). Euler inversion evaluates ``v`` at the *target* level on the
  current latent, ``x + (s' - s) * v(x, s')``, which is the exact inverse of the sampling
  step whenever ``v`` does not depend on ``x`` and never divides by the first sigma, 0.
- FireFlow (arXiv 2412.07517): a midpoint step ``x + h * v(x + h/2 * v_prev, s + h/2)``
  whose half step reuses the previous step's midpoint velocity, so a step costs one model
  evaluation (plus one at the start). Its sigmas are interleaved with the midpoints
  (:func:`with_midpoints`) so every model call happens at a scheduled sigma; it runs in
  either direction.
- Masked cfg-1 edit: outside the latent mask the latent is put back on the source's
  trajectory ``(1 - s) * source + s * noise`` after every step (:func:`source_trajectory`),
  so it ends on the source exactly; :func:`sample_masked_flowedit` is FlowEdit's
  inversion-free velocity difference gated by the mask, for comparison.
"""

from __future__ import annotations

from typing import Callable

import torch

from .inversion import in_easyinv_window, report_step
from .latent_mask import broadcast_latent_mask

FLOW_METHODS = ("euler", "fireflow")


def velocity(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``v = (x - denoised) / sigma``: the flow's velocity ``noise - x0`` from the model's denoised estimate."""
    return (x - denoised) / sigma


def _call(model, x: torch.Tensor, sigma: torch.Tensor, extra_args: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(velocity, denoised) of ``model`` at ``sigma`` (> 0) for every latent of ``x``."""
    if float(sigma) <= 0.0:
        raise ValueError("the flow velocity needs a sigma above 0")
    denoised = model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
    return velocity(x, denoised, sigma), denoised


@torch.no_grad()
def sample_flow_inversion(model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                          callback: Callable | None = None, disable: bool | None = None, eta: float = 1.0,
                          window_start: float = 0.0, window_length: float = 0.0,
                          schedule_steps: int | None = None) -> torch.Tensor:
    """Euler inversion along increasing ``sigmas`` [N+1], ``v`` at the target sigma; optional EasyInv blend.

    Inside EasyInv's window (``inversion.in_easyinv_window`` on ``schedule_steps``, default N)
    each step's output is blended with the previous one, ``x <- eta*x + (1-eta)*x_prev``;
    flow latents need no rescaling for that. ``eta = 1`` (the default) is plain Euler.
    """
    extra_args = {} if extra_args is None else extra_args
    steps = len(sigmas) - 1
    window_steps = steps if schedule_steps is None else schedule_steps
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        v, denoised = _call(model, x, sigma_next, extra_args)
        stepped = x + (sigma_next - sigma) * v
        if eta < 1.0 and in_easyinv_window(i, window_steps, window_start, window_length):
            stepped = eta * stepped + (1.0 - eta) * x
        x = stepped
        report_step(callback, i, x, sigma_next, denoised)
    return x


def with_midpoints(sigmas: torch.Tensor) -> torch.Tensor:
    """``[s0, s1, ..., sN]`` -> ``[s0, (s0+s1)/2, s1, ..., (s_{N-1}+sN)/2, sN]`` ([2N+1]): FireFlow's schedule."""
    mids = (sigmas[:-1] + sigmas[1:]) / 2
    out = torch.stack([sigmas[:-1], mids], dim=1).reshape(-1)
    return torch.cat([out, sigmas[-1:]])


@torch.no_grad()
def sample_fireflow(model, x: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
                    callback: Callable | None = None, disable: bool | None = None) -> torch.Tensor:
    """FireFlow's midpoint solver along ``sigmas`` = :func:`with_midpoints` of the schedule (either direction).

    Step ``k`` goes from ``sigmas[2k]`` to ``sigmas[2k+2]`` through the midpoint
    ``sigmas[2k+1]``: ``x_mid = x + (m - s) * v_prev``, ``x <- x + (s' - s) * v(x_mid, m)``,
    ``v_prev <- v(x_mid, m)``. The first ``v_prev`` is ``v(x, sigmas[0])``, or, when the
    run starts at sigma 0 (inversion), ``v(x, sigmas[2])`` (the target level, as Euler
    inversion). The callback reports step ``k`` as index ``2k+1`` (ComfyUI counts 2N steps).
    """
    if len(sigmas) % 2 != 1 or len(sigmas) < 3:
        raise ValueError(f"FireFlow needs the schedule with its midpoints ([2N+1] sigmas), got {len(sigmas)}")
    extra_args = {} if extra_args is None else extra_args
    first = sigmas[0] if float(sigmas[0]) > 0.0 else sigmas[2]
    v_prev, _ = _call(model, x, first, extra_args)
    for k in range(0, len(sigmas) - 1, 2):
        sigma, mid, sigma_next = sigmas[k], sigmas[k + 1], sigmas[k + 2]
        x_mid = x + (mid - sigma) * v_prev
        v_prev, denoised = _call(model, x_mid, mid, extra_args)
        x = x + (sigma_next - sigma) * v_prev
        report_step(callback, k + 1, x, sigma_next, denoised)
    return x


def trajectory_noise(start: torch.Tensor, source: torch.Tensor, sigma_start: torch.Tensor | float) -> torch.Tensor:
    """The noise ``n`` with ``(1 - s0) * source + s0 * n = start``: where an inverted latent says the source goes."""
    return (start - (1.0 - sigma_start) * source) / sigma_start


def source_trajectory(source: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``(1 - s) * source + s * noise``: the source re-noised to ``sigma`` along the flow's straight path."""
    return (1.0 - sigma) * source + sigma * noise


def keep_outside(x: torch.Tensor, source: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float,
                 keep: torch.Tensor) -> torch.Tensor:
    """``x`` inside the edit, the source trajectory at ``sigma`` where ``keep`` (broadcast over ``x``) is 1."""
    return x * (1 - keep) + source_trajectory(source, noise, sigma) * keep


def masked_sampler(sampler: Callable, source: torch.Tensor, mask: torch.Tensor) -> Callable:
    """``sampler`` with the area outside ``mask`` (1 = edit) pinned to the source's trajectory: ``mask`` [B,h,w] for
    image latents [B,C,h,w], [T',h,w] for video latents [B,C,T',h,w] (``latent_mask.broadcast_latent_mask``).

    The noise is the one the starting latent implies (:func:`trajectory_noise` at
    ``sigmas[0]``); every model call (FireFlow's midpoints too) sees, and every step ends
    with, the latent outside the mask on :func:`source_trajectory` at its sigma, so the
    run ends on ``source`` exactly there (the step reported as ``i`` holds the latent at ``sigmas[i + 1]``, as
    ``inversion.sample_ddim`` and :func:`sample_fireflow` report it; the sampler must
    report the latent tensor it goes on with). The model still sees the whole latent, so the edit blends into the kept
    background. ``sigmas[0]`` must be above 0 (a sampling run, not an inversion).
    """
    def run(model, x, sigmas, extra_args=None, callback=None, disable=None, **options):
        if float(sigmas[0]) <= 0.0:
            raise ValueError("the masked flow edit samples from noise: its sigmas must start above 0")
        src = source.to(x)
        noise = trajectory_noise(x, src, sigmas[0])
        keep = 1 - broadcast_latent_mask(mask, x)

        def pinned(step: dict) -> None:
            step["x"].copy_(keep_outside(step["x"], src, noise, sigmas[step["i"] + 1], keep))
            if callback is not None:
                callback(step)

        def pinned_model(x_in: torch.Tensor, sigma: torch.Tensor, **kwargs) -> torch.Tensor:
            return model(keep_outside(x_in, src, noise, sigma.reshape(-1)[0], keep), sigma, **kwargs)

        x = sampler(pinned_model, x, sigmas, extra_args, pinned, disable, **options)
        return keep_outside(x, src, noise, sigmas[-1], keep)

    return run


@torch.no_grad()
def sample_masked_flowedit(model_source: Callable, model_target: Callable, source: torch.Tensor,
                           sigmas: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """FlowEdit (arXiv 2412.08629) with its velocity difference multiplied by the latent mask.

    ``Z`` starts at ``source`` [B,C,h,w]; at each step ``Z_src = (1-s)*source + s*noise``,
    ``Z_tar = Z + Z_src - source`` and ``Z += (s' - s) * M * (v_tar(Z_tar) - v_src(Z_src))``.
    Outside ``mask`` [B,h,w] ``Z`` stays ``source`` exactly. ``model_*(x, sigma_batch)``
    return denoised latents (source and target prompts); one fixed ``noise`` for every step.
    """
    m = mask.to(source).unsqueeze(1)
    z = source.clone()
    ones = source.new_ones([source.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        z_src = source_trajectory(source, noise, sigma)
        z_tar = z + z_src - source
        v_src = velocity(z_src, model_source(z_src, sigma * ones), sigma)
        v_tar = velocity(z_tar, model_target(z_tar, sigma * ones), sigma)
        z = z + (sigma_next - sigma) * m * (v_tar - v_src)
    return z
