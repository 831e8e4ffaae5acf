"""One-shot tuning of a MODEL on a clip inside ComfyUI's own sampling machinery.

What is ComfyUI's and reused here (as ``comfy_extras/nodes_train.py`` does for LoRA):
- the run goes through ``Guider_Basic.sample`` with a custom ``Sampler`` whose ``sample``
  is the training loop, so model loading, conditioning preparation, the MODEL's wrappers
  and attention patches all run as in sampling; ``process_cond_list`` clones the
  conditioning out of inference mode;
- trainable to_q weights are weight wrappers (``add_weight_wrapper``) that ComfyUI's ops
  apply at cast time: ``nodes_train.BiasDiff`` carries a full-weight delta,
  ``comfy.weight_adapter.LoRAAdapter.create_train`` a LoRA;
- ``set_model_compute_dtype`` for the training precision, ``load_models_gpu(...,
  force_full_load=True)`` before the run, ``find_all_highest_child_module_with_forward``
  to pick the modules to checkpoint.
What could not be reused: ``TrainSampler`` draws a random subset of frames, a timestep per
frame and an x0 loss from the global RNG, while Tune-A-Video needs the clip in order, one
timestep per clip and an eps loss from a seeded generator (``drive_ops.diffusion.tuning``);
``nodes_train.patch`` checkpoints with the live ``transformer_options``, which the UNet
rewrites block by block, so the recomputation would look up per-block patches for the
wrong block: the checkpointing here hands each module a snapshot of it.

ComfyUI runs nodes in inference mode, and the weights it loaded there are inference
tensors, which autograd cannot keep for the backward pass; every frozen weight therefore
gets a no-op weight function, so ComfyUI's ops hand autograd a copy (what nodes_train's
per-layer adapters do as a side effect). Everything the run sets on the shared UNet (the
training clone's patches, the checkpointing) is undone in ``finally``, cancel included.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import comfy.model_management as mm
import comfy.model_patcher
import comfy.model_sampling
import comfy.samplers
import comfy.utils
import node_helpers
import torch
import torch.utils.checkpoint
from comfy.weight_adapter.lora import LoRAAdapter
from comfy_extras.nodes_custom_sampler import Guider_Basic
from comfy_extras.nodes_train import BiasDiff, find_all_highest_child_module_with_forward, process_cond_list

from ...drive_ops.core.progress import Progress
from ...drive_ops.diffusion import tuning
from ...drive_ops.diffusion.tuned_file import TunedVideoWeights
from .attention import apply_cross_frame_patch
from .temporal_attention import apply_temporal_layers, new_temporal_layers
from .tuned_weights import model_fingerprint, refuse_tuned_model, temporal_tensors

TRAINING_DTYPES = ("bf16", "fp32")
TRAINED_LAYERS = ("attn1.to_q", "attn2.to_q")


def _keep_for_autograd(weight: torch.Tensor) -> torch.Tensor:
    """A no-op weight function: its presence makes ComfyUI's cast copy the weight (see the module docstring)."""
    return weight


class TuneSampler(comfy.samplers.Sampler):
    """A Sampler whose ``sample`` runs ``train(denoise, x0)`` and returns zeros: the guider's path, no sampling."""

    def __init__(self, train: Callable):
        self.train = train

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        model_wrap.conds = process_cond_list(model_wrap.conds)
        self.train(lambda x, sigma: model_wrap(x, sigma, **extra_args), latent_image)
        return torch.zeros_like(latent_image)


@contextlib.contextmanager
def checkpointed(unet: torch.nn.Module, enabled: bool):
    """Gradient checkpointing of the UNet's top-level layers while the block runs, each given a snapshot of its
    dict arguments (``transformer_options``) so the recomputation sees what the forward saw."""
    if not enabled:
        yield
        return
    saved = []
    try:
        for module in find_all_highest_child_module_with_forward(unet):
            previous = module.__dict__.get("forward")
            forward = module.forward

            def run(*args, _forward=forward, **kwargs):
                args = tuple(dict(a) if isinstance(a, dict) else a for a in args)
                kwargs = {k: dict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
                return torch.utils.checkpoint.checkpoint(_forward, *args, use_reentrant=False, **kwargs)

            saved.append((module, previous))
            module.forward = run
        yield
    finally:
        for module, previous in reversed(saved):
            if previous is None:
                del module.forward
            else:
                module.forward = previous


def unload(patcher) -> None:
    """Take ``patcher`` out of ComfyUI's loaded models, restoring the shared UNet's weights and modules.

    ComfyUI's unpatch leaves a fully loaded model's weight functions in place until the next
    load; the training wrappers (and the parameters they hold) are wiped here instead.
    """
    for loaded in list(mm.current_loaded_models):
        if loaded.model is patcher:
            mm.current_loaded_models.remove(loaded)
            loaded.model_unload()
    for module in patcher.model.modules():
        comfy.model_patcher.wipe_lowvram_weight(module)


def check_tunable(model, latent: dict) -> torch.Tensor:
    """The clip's latents [F,C,h,w], after refusing what this recipe cannot tune."""
    refuse_tuned_model(model, "tuned again")
    sampling = model.get_model_object("model_sampling")
    if not (isinstance(sampling, comfy.model_sampling.EPS)
            and isinstance(sampling, comfy.model_sampling.ModelSamplingDiscrete)):
        raise ValueError(f"Tune-A-Video's eps loss needs a discrete-time eps / v-prediction model (SD1.x, SD2, SDXL); "
                         f"this MODEL samples with {type(sampling).__name__}")
    samples = latent["samples"]
    if samples.dim() != 4 or samples.shape[0] < 2:
        raise ValueError(f"Tune-A-Video tunes on a clip: the LATENT must hold at least 2 frames [F,4,h,w], got "
                         f"{tuple(samples.shape)}; VAE-encode the video's frames")
    return samples


def _trainable_to_q(train, recipe: tuning.TuneRecipe, paths: list[str]) -> tuple[dict, list]:
    """Weight wrappers for every attn1/attn2 to_q (a zero delta, or a LoRA) on ``train``; returns
    (file-name prefix -> wrapper, [(delta parameter, weight key)])."""
    wrappers, deltas = {}, []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)  # LoRAAdapter.create_train draws its init from the global RNG
        for path in paths:
            for layer in TRAINED_LAYERS:
                key = f"{path}.{layer}.weight"
                weight = train.get_model_object(key)
                if recipe.trainable == "lora":
                    wrapper = LoRAAdapter.create_train(torch.empty(weight.shape), recipe.lora_rank,
                                                       float(recipe.lora_rank))
                else:
                    delta = torch.nn.Parameter(torch.zeros(weight.shape, dtype=torch.float32))
                    wrapper = BiasDiff(delta)
                    deltas.append((delta, key))
                wrapper.requires_grad_(True)
                if recipe.trainable == "lora":
                    wrapper.alpha.requires_grad_(False)
                train.add_weight_wrapper(key, wrapper)
                wrappers[f"{path}.{layer}"] = wrapper
    return wrappers, deltas


def _keep_frozen_weights(train, trained: set[str]) -> None:
    """A no-op weight function on every frozen weight and bias of ComfyUI's ops (norms keep both for backward)."""
    for name, module in train.model.named_modules():
        for kind in ("weight", "bias"):
            key = f"{name}.{kind}"
            if hasattr(module, f"{kind}_function") and getattr(module, kind, None) is not None and key not in trained:
                train.add_weight_wrapper(key, _keep_for_autograd)


def to_q_tensors(wrappers: dict, recipe: tuning.TuneRecipe) -> dict[str, torch.Tensor]:
    """The trained to_q changes under ComfyUI's LoRA-file names (``.diff``, or LoRA ``lora_up``/``lora_down``/``alpha``)."""
    out = {}
    for prefix, wrapper in wrappers.items():
        if recipe.trainable == "lora":
            for name, param in wrapper.named_parameters():
                out[f"{prefix}.{name}"] = param.detach().float().cpu().clone()
        else:
            out[f"{prefix}.diff"] = wrapper.bias.detach().float().cpu().clone()
    return out


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """Every parameter of the shared UNet without gradients while the block runs, as it was afterwards.

    A checkpoint loaded by a node holds inference tensors, whose flag can be set back to
    True only inside inference mode.
    """
    before = [(p, p.requires_grad) for p in module.parameters()]
    try:
        module.requires_grad_(False)
        yield
    finally:
        for p, flag in before:
            with torch.inference_mode(p.is_inference()):
                p.requires_grad_(flag)


def static_model(model):
    """``model``, or where ComfyUI would load it with DynamicVRAM a clone that loads the classic way.

    From 0.16 on NVIDIA (torch >= 2.8) ComfyUI loads a MODEL with ``ModelPatcherDynamic``, which
    replaces the parameters of modules without its cast hooks, the temporal layers among them,
    by new ``Parameter(requires_grad=False)`` objects: the optimiser would step tensors the
    forward no longer reads. ``clone(disable_dynamic=True)`` (which re-reads the checkpoint) is
    the core's own way out; cores without it never re-parameterise.
    """
    is_dynamic = getattr(model, "is_dynamic", None)
    return model.clone(disable_dynamic=True) if is_dynamic is not None and is_dynamic() else model


def check_trains_what_runs(train, layers: dict, trainables: tuning.Trainables) -> None:
    """Refuse to train unless the loaded model runs the very temporal-layer tensors the optimiser steps."""
    stepped = {id(p) for p in trainables.all_parameters() if p.requires_grad}
    for path, layer in layers.items():
        block = comfy.utils.get_attr(train.model, path)
        running = getattr(block, "temporal", None)
        params = running.trained_parameters() if running is layer else []
        if not params or any(id(p) not in stepped for p in params):
            raise RuntimeError(
                f"Tune-A-Video: the loaded model's temporal layer at {path} is not the tensor set being trained "
                "(the model loader replaced its parameters), so the tuning would save untrained layers. Start "
                "ComfyUI with --disable-dynamic-vram and report this with your ComfyUI version.")


def training_clone(model, layers: dict, recipe: tuning.TuneRecipe):
    """The clone that trains: temporal layers, sparse-causal attention, the training precision, to_q wrappers.

    Returns (clone, file-name prefix -> to_q wrapper, [(delta, weight key)]).
    """
    train = apply_temporal_layers(model, layers)
    if recipe.sparse_causal:
        train = apply_cross_frame_patch(train, "sparse_causal", 0, False, "all", 0.0, 1.0)
    train.set_model_compute_dtype(node_helpers.string_to_torch_dtype(recipe.training_dtype))
    wrappers, deltas = _trainable_to_q(train, recipe, list(layers))
    _keep_frozen_weights(train, {f"{p}.weight" for p in wrappers})
    return train, wrappers, deltas


def make_step_loss(denoise: Callable, x0: torch.Tensor, sampling, recipe: tuning.TuneRecipe) -> Callable:
    """``step_loss(step, generator)``: eps-MSE of the model on the clip (or a run of its frames) at one timestep."""
    sigmas = sampling.sigmas.float().to(x0.device)
    dtype = node_helpers.string_to_torch_dtype(recipe.training_dtype)

    def step_loss(step: int, generator: torch.Generator) -> torch.Tensor:
        clip = x0[tuning.frame_window(generator, x0.shape[0], recipe.frames_per_step)]
        sigma = sigmas[tuning.draw_timestep(generator, sigmas.shape[0])].repeat(clip.shape[0])
        noise = tuning.draw_noise(generator, clip.shape, clip)
        x = sampling.noise_scaling(sigma, noise, clip)
        with torch.autocast(x0.device.type, dtype=dtype, enabled=dtype != torch.float32):
            denoised = denoise(x, sigma)
        return tuning.eps_mse(tuning.eps_from_denoised(x, denoised, sigma), noise)

    return step_loss


def tune(model, latent: dict, conditioning: list, recipe: tuning.TuneRecipe, progress: Progress | None = None,
         on_step: Callable[[int, float], None] | None = None) -> TunedVideoWeights:
    """Tune-A-Video on ``latent``'s clip with its caption ``conditioning``; the input MODEL is not changed.

    Returns the trained tensors with their metadata (recipe, base fingerprint, losses, timing).
    """
    samples = check_tunable(model, latent)
    base = model_fingerprint(model)
    sampling = model.get_model_object("model_sampling")
    result = {}
    with torch.inference_mode(False):
        layers = new_temporal_layers(model, recipe.seed)
        for layer in layers.values():
            layer.requires_grad_(False)
            for p in layer.trained_parameters():
                p.requires_grad_(True)
        train, wrappers, delta_keys = training_clone(static_model(model), layers, recipe)
        try:
            with frozen(train.model):
                mm.load_models_gpu([train], memory_required=1e20, force_full_load=True)
                trainables = tuning.Trainables(
                    deltas=[tuning.DeltaWeight(d, comfy.utils.get_attr(train.model, key).detach())
                            for d, key in delta_keys],
                    parameters=[p for layer in layers.values() for p in layer.trained_parameters()]
                    + ([p for w in wrappers.values() for p in w.parameters() if p.requires_grad]
                       if recipe.trainable == "lora" else []))
                check_trains_what_runs(train, layers, trainables)

                def train_loop(denoise: Callable, x0: torch.Tensor) -> None:
                    start = time.perf_counter()
                    with checkpointed(train.model.diffusion_model, recipe.gradient_checkpointing):
                        result["losses"] = tuning.run_tuning(make_step_loss(denoise, x0, sampling, recipe),
                                                             trainables, recipe, progress, on_step)
                    result["seconds"] = time.perf_counter() - start

                guider = Guider_Basic(train)
                guider.set_conds(conditioning)
                guider.sample(torch.zeros_like(samples), samples, TuneSampler(train_loop),
                              torch.stack([sampling.sigma_max, sampling.sigma_min]).float(), seed=recipe.seed)
        finally:
            unload(train)
        for layer in layers.values():
            layer.requires_grad_(False)
        tensors = {**temporal_tensors(layers), **to_q_tensors(wrappers, recipe)}
    losses = result["losses"]
    metadata = {"recipe": recipe.to_dict(), "base_model": base.to_dict(), "base_hash": base.hash,
                "losses": losses, "summary": tuning.loss_summary(losses),
                "clip": {"frames": int(samples.shape[0]), "latent_size": list(samples.shape[-2:])},
                "trainable_parameters": trainables.count(), "seconds_per_step": result["seconds"] / recipe.steps,
                "temporal_blocks": len(layers)}
    return TunedVideoWeights(tensors, metadata)
