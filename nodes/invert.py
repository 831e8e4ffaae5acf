"""Inversion nodes (DRIVE/invert): Invert Video, the EasyInv SAMPLER, and STEM inversion attention.

The samplers and the patches come from ``nodes/patches``; the maths from
``drive_ops.diffusion`` (schedule, inversion, stem).
"""

from __future__ import annotations

from comfy_api.latest import io

from ..drive_ops.core.validate import check_latent, check_numbers
from ..drive_ops.diffusion import inversion, schedule
from ..drive_ops.diffusion.stem import INITS
from .checks import check_options, combo_answer
from .patches.attention import apply_stem_patch
from .patches.grid_wrapper import MAX_GRIDS, MAX_GRIDS_TIP
from .patches.model_family import FLOW_METHODS, family_of
from .patches.samplers import easyinv_sampler, inversion_sampler, run_sampler
from .patches.video_latent import grid_patch_for

EASYINV_FROM = inversion.easyinv_first_steps(0.05, 0.2)
INVERT_WINDOW = ("EasyInv blends z <- eta*z + (1-eta)*z_prev inside start*steps < i < (start+length)*steps "
                 f"(step 0 never). With the default window it acts from {EASYINV_FROM} steps on (50 steps: "
                 f"steps 3-12); with fewer steps no step falls inside and the result is plain DDIM.")
SDXL_RULE = (" Left at the SD1.x defaults (0.5, 0.05, 0.2) all three become SDXL's (0.8, 0.85, 0.1) on an SDXL "
             "model; change any of them and all three are used as set.")
SD1_ETA, SD1_START, SD1_LENGTH = inversion.EASYINV_SD1


def easyinv_inputs() -> list:
    """EasyInv's settings, shared by DRIVE_InvertVideo and DRIVE_EasyInvSampler."""
    return [
        io.Float.Input("eta", default=SD1_ETA, min=0.0, max=1.0, step=0.01,
                       tooltip="EasyInv weight of the current latent (SD1.x 0.5, SDXL 0.8; 1 = plain DDIM)."
                               + SDXL_RULE),
        io.Float.Input("window_start", default=SD1_START, min=0.0, max=1.0, step=0.01,
                       tooltip="Start of the EasyInv window, as a fraction of the steps (SD1.x 0.05, SDXL 0.85). "
                               + INVERT_WINDOW),
        io.Float.Input("window_length", default=SD1_LENGTH, min=0.0, max=1.0, step=0.01,
                       tooltip="Length of the EasyInv window, as a fraction of the steps (SD1.x 0.2, SDXL 0.1)."),
        io.Combo.Input("blend", options=list(inversion.BLEND_MODES), default="after",
                       tooltip="after: blend each step's output (EasyInv README); before: blend the step's "
                               "input (the authors' SD-1.4 code)."),
    ]


class InvertVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_InvertVideo",
            display_name="Invert Video (DRIVE)",
            category="DRIVE/invert",
            description="Inverts VAE-encoded frames to noise along the DDIM schedule (per frame as RAVE does, or "
                        "on grids), with EasyInv's latent blending; on flow-matching models (SD3, Flux, ...) along "
                        "the model's flow schedule, with Euler or FireFlow. ControlNets applied to the conditioning "
                        "are honoured. The result feeds the Masked-CFG Sampler (DRIVE) with the same steps.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model: a discrete-schedule eps or v-prediction "
                                                "model (SD1.x, SD2.x, SDXL) or a flow-matching model (CONST "
                                                "sampling at any shift: SD3.x, Flux, Qwen-Image, ...)."),
                io.Conditioning.Input("conditioning", tooltip="The inversion prompt; DRIVE uses empty text."),
                io.Latent.Input("latent", tooltip="The video's VAE-encoded frames [T,4,h,w]. A noise_mask on it is "
                                                  "kept for the sampler (outside it the edit returns the source)."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="Inversion steps on the pack's DDIM grid (k*(1000//steps)+1); the sampler must "
                                     "use the same (the inverted latent records it and the sampler checks). Core "
                                     "ddim_uniform picks the same grid only when steps divides 1000 (10, 20, 25, "
                                     "40, 50, 100, ...); at other counts it runs one extra step. On flow models the "
                                     "steps are uniform in time through the model's shift (core's simple scheduler gives the "
                                     "same sigmas when steps divides 1000)."),
                io.Combo.Input("method", options=list(FLOW_METHODS), default="ddim",
                               tooltip="ddim (the default, as DRIVE's own code inverts): plain DDIM inversion; on "
                                       "the test beds it reconstructs about 9 dB (eps, 50 steps, bench.inversion_grid) "
                                       "and up to 2.2 dB (flow) closer than easyinv, and edits as well; easyinv: DDIM "
                                       "with EasyInv's blending (it "
                                       f"acts from {EASYINV_FROM} steps on with the default window; below that it "
                                       "equals ddim); stem: DDIM with STEM attention (256 EM bases over the whole "
                                       "clip's tokens, so the clip goes through the UNet in one call: keep "
                                       "max_grids_per_call 0; tune it, e.g. frame groups, with STEM Attention (DRIVE) "
                                       "+ method ddim). On flow models ddim is Euler on the velocity; fireflow "
                                       "(flow models only) is FireFlow's second-order midpoint solver, one model "
                                       "call per step, and the sampler then follows it."),
                *easyinv_inputs(),
                io.Float.Input("cfg", default=1.0, min=0.0, max=30.0, step=0.1,
                               tooltip="CFG during inversion; 1 uses the inversion prompt alone (DRIVE). "
                                       "Other values need `negative`."),
                io.Int.Input("grid_size", default=1, min=1, max=8,
                             tooltip="1 inverts each frame on its own (RAVE); g > 1 inverts fixed g x g grids."),
                io.Int.Input("max_grids_per_call", tooltip=MAX_GRIDS_TIP, **MAX_GRIDS),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Uncond prompt, only used when cfg is not 1."),
                io.Float.Input("denoise", default=1.0, min=0.01, max=1.0, step=0.01, optional=True,
                               tooltip="Partial edit (strength): invert only the first floor(steps*denoise) steps; "
                                       "give the sampler the same steps and denoise. The EasyInv window stays a "
                                       "fraction of the full steps."),
            ],
            outputs=[io.Latent.Output(display_name="inverted",
                                      tooltip="Latents at the end of the inversion: sample them with no added noise. "
                                              "They record the schedule (steps, denoise, final sigma, method) for "
                                              "the sampler to check.")],
        )

    @classmethod
    def validate_inputs(cls, method, blend) -> bool | str:
        return combo_answer(cls, method=method, blend=blend)

    @classmethod
    def execute(cls, model, conditioning, latent, steps, method, eta, window_start, window_length, blend, cfg,
                grid_size, max_grids_per_call, negative=None, denoise=1.0) -> io.NodeOutput:
        check_options(cls, method=method, blend=blend)
        check_latent(latent, "the latent input")
        check_numbers(eta=eta, window_start=window_start, window_length=window_length, cfg=cfg, denoise=denoise)
        if cfg != 1.0 and negative is None:
            raise ValueError("inversion with cfg other than 1 needs a `negative` conditioning; connect one or set cfg 1")
        patched = grid_patch_for(model, latent["samples"], grid_size, False, 0, max_grids_per_call, "Invert Video")
        family = family_of(model)
        family.check_method(method)
        sigmas = family.inversion_sigmas(steps, denoise, method)
        if method == "stem":
            patched = apply_stem_patch(patched)
        sampler = inversion_sampler(method, eta, window_start, window_length, blend, schedule_steps=steps)
        out = run_sampler(patched, conditioning, conditioning if negative is None else negative, latent, cfg, sampler,
                          sigmas, 0)
        record = schedule.inversion_record(steps, denoise, float(sigmas[-1]), method, latent["samples"])
        out[schedule.INVERSION_RECORD_KEY] = {**record, **family.record_fields()}
        return io.NodeOutput(out)


class EasyInvSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_EasyInvSampler",
            display_name="EasyInv Sampler (DRIVE)",
            category="DRIVE/invert",
            description="A SAMPLER for inversion along flipped sigmas (FlipSigmas): DDIM inversion with "
                        "EasyInv's latent blending (eta 1 = plain DDIM inversion). Use it with "
                        "SamplerCustomAdvanced, DisableNoise and cfg 1. Its window is a fraction of the sigmas it "
                        "is given. On flow-matching models it is Euler inversion on the velocity with the same "
                        "blend; models other than eps / v-prediction and flow ones are refused.",
            inputs=easyinv_inputs(),
            outputs=[io.Sampler.Output(display_name="sampler", tooltip="The inversion sampler.")],
        )

    @classmethod
    def validate_inputs(cls, blend) -> bool | str:
        return combo_answer(cls, blend=blend)

    @classmethod
    def execute(cls, eta, window_start, window_length, blend) -> io.NodeOutput:
        check_options(cls, blend=blend)
        check_numbers(eta=eta, window_start=window_start, window_length=window_length)
        return io.NodeOutput(easyinv_sampler(eta, window_start, window_length, blend))


class STEMAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_STEMAttention",
            display_name="STEM Attention (DRIVE)",
            category="DRIVE/invert",
            description="STEM inversion ('A Video is Worth 256 Bases'): every self-attention layer attends to a "
                        "compact basis set estimated by EM over the key tokens of the whole clip (or of chunks of "
                        "frames), giving spatio-temporal context at linear cost. Use the patched MODEL only for "
                        "inversion / reconstruction (cfg 1, source prompt), then edit with the unpatched MODEL. "
                        "Logs its memory estimate per layer size.",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch (it is cloned, never changed)."),
                io.Int.Input("num_bases", default=256, min=1, max=8192,
                             tooltip="Bases per head (paper: 256). Never more than the tokens of a frame group."),
                io.Int.Input("iterations", default=5, min=1, max=50, tooltip="EM iterations per layer call (5)."),
                io.Float.Input("temperature", default=0.01, min=0.0001, max=10.0, step=0.0001,
                               tooltip="Softmax temperature of the E-step (0.01: nearly hard assignments)."),
                io.Int.Input("chunk_frames", default=0, min=0, max=4096,
                             tooltip="Frames (grids, with the grid patch's grid_size > 1) sharing one basis set; 0 "
                                     "= the whole batch (paper), 8 = the official code. Smaller chunks bound the "
                                     "memory. Chunked UNet calls (max_grids_per_call) always hold whole groups, so "
                                     "results never depend on free memory; with 0 the clip goes in one call."),
                io.Combo.Input("init", options=list(INITS), default="gaussian",
                               tooltip="Initial bases: gaussian = Normal(mean, std) of the keys (official code); "
                                       "tokens = a random subset of the keys."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1,
                             tooltip="Seed of the base initialisation (the same draw at every layer call)."),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def validate_inputs(cls, init) -> bool | str:
        return combo_answer(cls, init=init)

    @classmethod
    def execute(cls, model, num_bases, iterations, temperature, chunk_frames, init, seed) -> io.NodeOutput:
        check_options(cls, init=init)
        check_numbers(temperature=temperature)
        return io.NodeOutput(apply_stem_patch(model, num_bases, iterations, temperature, chunk_frames, init, seed))


NODES: list[type[io.ComfyNode]] = [InvertVideo, EasyInvSampler, STEMAttention]
