"""A PREDICT_NOISE wrapper that stops samplers evaluating the model more than once per step.

The grid shuffle (one permutation per step) and masked CFG's ``cfg_start`` schedule keep
per-step state keyed by the step a model call belongs to. Heun, DPM-2, DPM++ SDE and
other multi-stage samplers evaluate the model twice per step, either at an intermediate
sigma (``schedule.step_index`` refuses it) or at the next step's sigma (Heun's
corrector), which only shows as a step seen twice. Once-per-step samplers visit every
step once, in order, so a step index that does not rise is refused here.
"""

from __future__ import annotations

from ...drive_ops.diffusion import schedule

ONCE_PER_STEP = ("ddim, euler, euler_ancestral, lms, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde, ddpm, lcm, ipndm, deis, "
                 "res_multistep, gradient_estimation, er_sde, sa_solver, uni_pc (and their _cfg_pp, _gpu, "
                 "ancestral variants)")
"""Core samplers that call the model once per step (tests/integration/test_engine_inprocess.py runs every one)."""
TWO_CALLS = ("heun, heunpp2, dpm_2, dpm_2_ancestral, dpmpp_2s_ancestral, dpmpp_sde, seeds_2, seeds_3, "
             "sa_solver_pece, dpm_fast, dpm_adaptive")
"""Core samplers that evaluate the model more than once per step (or on their own sigmas)."""


class StepCalls:
    """The last step a run evaluated the model at (per run: it lives in the run's transformer_options)."""

    def __init__(self):
        self.last = None

    def visit(self, step: int, sigma: float, what: str) -> None:
        if self.last is not None and step <= self.last:
            raise ValueError(f"the sampler evaluated the model again at step {step} (sigma {sigma:.6g}) after step "
                             f"{self.last}: it calls the model more than once per step ({TWO_CALLS}), which "
                             f"{what} cannot follow. Use a sampler that calls it once per step: {ONCE_PER_STEP}")
        self.last = step


def make_step_guard(state_key: str, what: str):
    """The PREDICT_NOISE wrapper; ``state_key`` keeps each patch's record apart, ``what`` names the patch."""
    def predict_noise(executor, x, timestep, model_options, seed):
        options = model_options.get("transformer_options", {})
        sigmas = options.get("sample_sigmas")
        if sigmas is not None:
            step = schedule.step_index(sigmas, timestep)
            calls = options.get(state_key)
            if calls is None:
                calls = options[state_key] = StepCalls()
            calls.visit(step, float(timestep.reshape(-1)[0]), what)
        return executor(x, timestep, model_options, seed)

    return predict_noise
