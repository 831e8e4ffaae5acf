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

ONCE_PER_STEP = frozenset((
    "ddim", "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "lms", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "sa_solver", "uni_pc", "uni_pc_bh2"))
"""Core samplers that call the model once per step, at the scheduled sigmas (tests/integration/test_engine_inprocess.py
runs every sampler of the core it runs on and holds this list to what each one does)."""


def core_samplers() -> tuple[list[str], list[str]]:
    """(once per step, more than once per step): the running core's samplers, split by :data:`ONCE_PER_STEP`; a
    sampler a newer core adds counts as two-call until it is shown to be once per step."""
    import comfy.samplers

    names = list(comfy.samplers.KSampler.SAMPLERS)
    return [n for n in names if n in ONCE_PER_STEP], [n for n in names if n not in ONCE_PER_STEP]


class StepCalls:
    """The last step a run evaluated the model at (per run: it lives in the run's transformer_options)."""

    def __init__(self):
        self.last = None

    def visit(self, step: int, sigma: float, what: str) -> None:
        if self.last is not None and step <= self.last:
            once, twice = core_samplers()
            raise ValueError(f"the sampler evaluated the model again at step {step} (sigma {sigma:.6g}) after step "
                             f"{self.last}: it calls the model more than once per step ({', '.join(twice)}), which "
                             f"{what} cannot follow. Use a sampler that calls it once per step: {', '.join(once)}")
        self.last = step


def make_step_guard(state_key: str, what: str):
    """The PREDICT_NOISE wrapper; ``state_key`` keeps each patch's record apart, ``what`` names the patch."""
    def predict_noise(executor, x, timestep, model_options, *args, **kwargs):
        options = model_options.get("transformer_options", {})
        sigmas = options.get("sample_sigmas")
        if sigmas is not None:
            step = schedule.step_index(sigmas, timestep)
            calls = options.get(state_key)
            if calls is None:
                calls = options[state_key] = StepCalls()
            calls.visit(step, float(timestep.reshape(-1)[0]), what)
        return executor(x, timestep, model_options, *args, **kwargs)

    return predict_noise
