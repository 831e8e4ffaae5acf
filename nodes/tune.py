"""Tuning nodes (DRIVE/tune): Tune-A-Video's one-shot tuning of the MODEL on the clip, and saving / loading the result.

The training run and the patches that carry the tuned weights come from ``nodes/patches``
(tuning, tuned_weights, temporal_attention); the maths from ``drive_ops.diffusion``
(tuning, temporal_attention, model_fingerprint, tuned_file). The tuned MODEL goes through
Invert Video and the samplers like any MODEL, with grid_size 1 and shuffle off.
"""

from __future__ import annotations

import logging
import os

import comfy.model_management as mm
import folder_paths
from comfy_api.latest import io

from .checks import combo_answer
from ..drive_ops.diffusion import tuning
from ..drive_ops.diffusion.tuned_file import TunedVideoWeights, load_tuned, save_tuned
from ..drive_ops.evaluate.loss_plot import plot_loss_curve
from .model_folders import register_model_folder
from .patches.tuned_weights import apply_tuned, check_base, tuned_of
from .patches.tuning import TRAINING_DTYPES, tune
from .progress import progress_bar

log = logging.getLogger(__name__)

TUNED_FOLDER = "drive_tuned"
register_model_folder(TUNED_FOLDER, {".safetensors"})

RECIPE = tuning.TuneRecipe()


def _progress_text(node_id: str | None):
    """``send(text)`` showing a line on the node in the UI, or None outside a server."""
    if node_id is None:
        return None
    try:
        from server import PromptServer
        server = PromptServer.instance
    except (ImportError, AttributeError):
        return None
    return lambda text: server.send_progress_text(text, node_id)


def summary_text(tuned: TunedVideoWeights) -> str:
    """The run's headline numbers, one per line."""
    meta, recipe, s = tuned.metadata, tuned.metadata["recipe"], tuned.metadata["summary"]
    clip = meta["clip"]
    return "\n".join([
        f"Tune-A-Video: {recipe['steps']} steps, trainable {recipe['trainable']}"
        + (f" (rank {recipe['lora_rank']})" if recipe["trainable"] == "lora" else "")
        + f", {meta['trainable_parameters'] / 1e6:.2f} M parameters ({meta['temporal_blocks']} temporal layers + "
          f"attn1/attn2 to_q), lr {recipe['learning_rate']:g}, {recipe['training_dtype']}, sparse-causal "
          f"{'on' if recipe['sparse_causal'] else 'off'}, seed {recipe['seed']}",
        f"eps-MSE loss: first {s['first']:.4f}, last {s['last']:.4f}, min {s['min']:.4f}; mean of the first tenth "
        f"{s['mean_first_tenth']:.4f} -> last tenth {s['mean_last_tenth']:.4f}",
        f"time: {meta['seconds_per_step']:.3f} s per step on {clip['frames']} frames of "
        f"{clip['latent_size'][0]}x{clip['latent_size'][1]} latents"
        + (f" ({recipe['frames_per_step']} per step)" if 0 < recipe["frames_per_step"] < clip["frames"] else ""),
        f"base model hash: {meta['base_hash']}",
    ])


class TuneAVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_TuneAVideo",
            display_name="Tune-A-Video (DRIVE)",
            category="DRIVE/tune",
            description="Tune-A-Video's one-shot tuning: new temporal attention layers (zero at the start) after every "
                        "transformer block, sparse-causal self-attention, and the attn1/attn2 to_q projections trained "
                        "on the clip with its caption (eps-MSE at random timesteps, AdamW 3e-5, weight decay 1e-2, "
                        "gradient clip 1.0). Returns a clone of the MODEL carrying the tuned weights as patches (the "
                        "input MODEL is never changed), the loss curve and its numbers. Invert the clip with the "
                        "tuned MODEL, then sample the edit with it (grid_size 1, shuffle off). Takes 300-500 steps; "
                        "about 10-15 min for 24 frames at 512x512 on an A100 (Tune-A-Video's figure).",
            inputs=[
                io.Model.Input("model", tooltip="The image model to tune (SD1.x / SD2 / SDXL UNet); it is cloned, never "
                                                "changed."),
                io.Latent.Input("latent", tooltip="The clip's VAE-encoded frames [F,4,h,w], in order (Tune-A-Video: "
                                                  "24 frames at 512x512)."),
                io.Conditioning.Input("conditioning", tooltip="The clip's caption (what it shows now, e.g. 'a man is "
                                                              "skiing'); the edit prompt differs from it later."),
                io.Int.Input("steps", default=RECIPE.steps, min=1, max=100000,
                             tooltip="Optimisation steps (Tune-A-Video: 300-500)."),
                io.Float.Input("learning_rate", default=RECIPE.learning_rate, min=1e-7, max=1.0, step=1e-6,
                               tooltip="AdamW learning rate, constant (Tune-A-Video: 3e-5). LoRA usually wants "
                                       "more (1e-4)."),
                io.Combo.Input("trainable", options=list(tuning.TRAINABLE_SETS), default=RECIPE.trainable,
                               tooltip="tune_a_video: the temporal layers and the full attn1/attn2 to_q weights; lora: "
                                       "the temporal layers and a LoRA of lora_rank on the same to_q layers."),
                io.Int.Input("lora_rank", default=RECIPE.lora_rank, min=1, max=256,
                             tooltip="Rank of the to_q LoRA (trainable lora only); alpha = rank, so its scale is 1."),
                io.Int.Input("frames_per_step", default=RECIPE.frames_per_step, min=0, max=4096,
                             tooltip="Frames per step: 0 = the whole clip (Tune-A-Video); fewer trains on a random "
                                     "run of consecutive frames each step, to save memory."),
                io.Boolean.Input("gradient_checkpointing", default=RECIPE.gradient_checkpointing,
                                 tooltip="Recompute activations in the backward pass: much less memory, about a third "
                                         "more time."),
                io.Combo.Input("training_dtype", options=list(TRAINING_DTYPES), default=RECIPE.training_dtype,
                               tooltip="Compute precision of the UNet during tuning (the trained weights stay fp32). "
                                       "bf16 on GPUs; fp32 on the CPU."),
                io.Int.Input("seed", default=RECIPE.seed, min=0, max=0xFFFFFFFFFFFFFFFF,
                             tooltip="Seeds the timesteps, noise, frame runs and the new layers' init (Tune-A-Video: "
                                     "33). Keep it fixed: a new seed tunes again."),
                io.Boolean.Input("sparse_causal", default=RECIPE.sparse_causal,
                                 tooltip="Sparse-causal self-attention (each frame attends to the first and the "
                                         "previous frame) during tuning and in the tuned MODEL, as Tune-A-Video."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="A clone of the MODEL with the tuned weights as patches."),
                io.Image.Output(display_name="loss_curve", tooltip="The per-step loss and its moving average."),
                io.String.Output(display_name="summary", tooltip="The run's numbers: losses, time per step, recipe."),
                io.Float.Output(display_name="final_loss", tooltip="Mean loss over the last tenth of the steps."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, trainable, training_dtype) -> bool | str:
        return combo_answer(cls, trainable=trainable, training_dtype=training_dtype)

    @classmethod
    def execute(cls, model, latent, conditioning, steps, learning_rate, trainable, lora_rank, frames_per_step,
                gradient_checkpointing, training_dtype, seed, sparse_causal) -> io.NodeOutput:
        recipe = tuning.TuneRecipe(steps=steps, learning_rate=learning_rate, trainable=trainable,
                                   lora_rank=lora_rank, frames_per_step=frames_per_step,
                                   gradient_checkpointing=gradient_checkpointing, training_dtype=training_dtype,
                                   seed=seed, sparse_causal=sparse_causal)
        send = _progress_text(cls.hidden.unique_id if cls.hidden is not None else None)

        def on_step(step: int, loss: float) -> None:
            if send is not None:
                send(f"step {step + 1}/{steps}  loss {loss:.4f}")

        tuned = tune(model, latent, conditioning, recipe, progress_bar(steps), on_step)
        summary = tuned.metadata["summary"]
        curve = plot_loss_curve(tuned.metadata["losses"], f"Tune-A-Video loss ({trainable}, {steps} steps): "
                                f"{summary['mean_first_tenth']:.4f} -> {summary['mean_last_tenth']:.4f}")
        text = summary_text(tuned)
        log.info("DRIVE %s", text.replace("\n", "; "))
        return io.NodeOutput(apply_tuned(model, tuned), curve.to(mm.intermediate_device()), text,
                             summary["mean_last_tenth"])


class SaveTunedVideoModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_SaveTunedVideoModel",
            display_name="Save Tuned Video Model (DRIVE)",
            category="DRIVE/tune",
            description="Writes the tuned weights of a Tune-A-Video MODEL to models/drive_tuned as .safetensors: only "
                        "the trained tensors (temporal layers, to_q changes in ComfyUI's LoRA format), with the base "
                        "model's hash and the recipe in the metadata. Load them onto the same checkpoint with Load "
                        "Tuned Video Model (DRIVE).",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL output of Tune-A-Video (DRIVE) or Load Tuned Video Model."),
                io.String.Input("filename_prefix", default="tune_a_video/clip",
                                tooltip="File name (and sub-folder) inside models/drive_tuned; a counter is added."),
            ],
            outputs=[io.String.Output(display_name="tuned_name",
                                      tooltip="The file's name inside models/drive_tuned, as Load lists it.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, model, filename_prefix) -> io.NodeOutput:
        tuned = tuned_of(model)
        if tuned is None:
            raise ValueError("this MODEL carries no tuned video weights; connect the MODEL output of Tune-A-Video "
                             "(DRIVE) or Load Tuned Video Model (DRIVE)")
        root = folder_paths.get_folder_paths(TUNED_FOLDER)[0]
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, root)
        os.makedirs(folder, exist_ok=True)
        name = f"{filename}_{counter:05}_.safetensors"
        path = save_tuned(os.path.join(folder, name), tuned.tensors, tuned.metadata)
        relative = os.path.join(subfolder, name) if subfolder else name
        log.info("DRIVE saved tuned video weights (%d tensors) to %s", len(tuned.tensors), path)
        return io.NodeOutput(relative)


class LoadTunedVideoModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DRIVE_LoadTunedVideoModel",
            display_name="Load Tuned Video Model (DRIVE)",
            category="DRIVE/tune",
            description="Applies tuned weights from models/drive_tuned (Save Tuned Video Model) to a clone of the "
                        "MODEL: temporal layers, to_q changes and, if the recipe had it, sparse-causal attention. "
                        "Refuses a MODEL other than the base the weights were tuned on (another checkpoint, or "
                        "different LoRAs), with the reason.",
            inputs=[
                io.Model.Input("model", tooltip="The base MODEL the weights were tuned on (same checkpoint and LoRAs)."),
                io.Combo.Input("tuned_name", options=folder_paths.get_filename_list(TUNED_FOLDER),
                               tooltip="A .safetensors file in models/drive_tuned written by Save Tuned Video Model."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="A clone of the MODEL with the tuned weights as patches."),
                io.String.Output(display_name="summary", tooltip="The recipe and losses of the tuning run."),
            ],
        )

    @classmethod
    def validate_inputs(cls, tuned_name) -> bool:
        """Names tuned_name so that core's generic combo check leaves it to execute, whose message names the
        drive_tuned folder to put a missing file in."""
        return True

    @classmethod
    def execute(cls, model, tuned_name) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(TUNED_FOLDER, tuned_name)
        tensors, metadata = load_tuned(path)
        tuned = TunedVideoWeights(tensors, metadata)
        check_base(model, tuned, tuned_name)
        return io.NodeOutput(apply_tuned(model, tuned), summary_text(tuned))


NODES: list[type[io.ComfyNode]] = [TuneAVideo, SaveTunedVideoModel, LoadTunedVideoModel]
