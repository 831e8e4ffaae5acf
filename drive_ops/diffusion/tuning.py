"""One-shot tuning of a diffusion model on one clip: Tune-A-Video's recipe as a plain PyTorch loop.

Tune-A-Video tunes an image model on the clip it will edit: at every step one timestep
``t`` is drawn uniformly from the 1000 training steps for the whole clip, each frame's
latent gets fresh Gaussian noise, and the model's noise prediction is pulled toward that
noise (eps-MSE). AdamW, learning rate 3e-5 (constant), weight decay 1e-2, gradient norm
clipped to 1.0, 500 steps (docs/algorithms.md, Tune-A-Video).

Trainable weights come in two forms:
- *deltas* added to a frozen weight (the full ``to_q`` fine-tune, ``W = W0 + D``):
  AdamW's decoupled weight decay must act on the whole weight, so the loop applies
  ``D <- D - lr * wd * (W0 + D)`` itself before each step (the optimizer has no decay for
  them); that is exactly AdamW on ``W``, since ``W0`` is constant;
- *parameters* that are the weights themselves (new temporal layers, LoRA factors):
  plain AdamW with its own decay.

The loop knows nothing about UNets: ``step_loss(step, generator)`` computes one step's
loss from the model; the seeded ``torch.Generator`` draws timesteps, noise and frame
windows, so a run is reproducible and never touches the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..core.progress import Progress, notify

TRAINABLE_SETS = ("tune_a_video", "lora")
"""tune_a_video: temporal layers + full attn1.to_q / attn2.to_q; lora: temporal layers + LoRA on those to_q."""

TRAIN_TIMESTEPS = 1000


@dataclass
class TuneRecipe:
    """Every setting of one tuning run; the tuned file's metadata records it."""

    steps: int = 500
    learning_rate: float = 3e-5
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    trainable: str = "tune_a_video"
    lora_rank: int = 16
    frames_per_step: int = 0
    gradient_checkpointing: bool = True
    training_dtype: str = "bf16"
    sparse_causal: bool = True
    seed: int = 33

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE_SETS:
            raise ValueError(f"unknown trainable set {self.trainable!r}; use one of {', '.join(TRAINABLE_SETS)}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be above 0, got {self.learning_rate}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeltaWeight:
    """A trainable delta ``D`` on a frozen weight ``W0``: the weight in use is ``W0 + D``."""

    delta: torch.nn.Parameter
    base: torch.Tensor


@dataclass
class Trainables:
    """What one run trains: weight deltas and plain parameters."""

    deltas: list[DeltaWeight] = field(default_factory=list)
    parameters: list[torch.nn.Parameter] = field(default_factory=list)

    def all_parameters(self) -> list[torch.nn.Parameter]:
        return [d.delta for d in self.deltas] + list(self.parameters)

    def count(self) -> int:
        return sum(p.numel() for p in self.all_parameters())


def draw_timestep(generator: torch.Generator, train_steps: int = TRAIN_TIMESTEPS) -> int:
    """One training timestep, uniform over ``0 .. train_steps - 1`` (DDPM's ``randint``)."""
    return int(torch.randint(0, train_steps, (1,), generator=generator))


def frame_window(generator: torch.Generator, frames: int, per_step: int) -> slice:
    """The frames one step trains on: all of them (``per_step`` 0 or >= frames), else a random contiguous run.

    A contiguous run keeps the frames in order, which the temporal layers and the
    sparse-causal attention need.
    """
    if per_step <= 0 or per_step >= frames:
        return slice(0, frames)
    start = int(torch.randint(0, frames - per_step + 1, (1,), generator=generator))
    return slice(start, start + per_step)


def draw_noise(generator: torch.Generator, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` from the CPU generator (the same draw on every device), as ``like``."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=like.device, dtype=like.dtype)


def eps_from_denoised(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The model's noise prediction from its denoised estimate, in variance-exploding units: ``(x - D) / sigma``.

    x, denoised: [B, C, h, w]; sigma: [B] or a scalar (above 0).
    """
    sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1, *([1] * (x.dim() - 1)))
    return (x.float() - denoised.float()) / sigma


def eps_mse(eps_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Tune-A-Video's loss: mean squared error between predicted and true noise, in float32."""
    return F.mse_loss(eps_pred.float(), noise.float())


def decay_full_weights(deltas: list[DeltaWeight], lr: float, weight_decay: float) -> None:
    """AdamW's decoupled decay of the whole weight ``W0 + D``, applied to ``D`` in place (before the step)."""
    if weight_decay == 0.0:
        return
    with torch.no_grad():
        for d in deltas:
            d.delta.sub_(lr * weight_decay * (d.base.to(d.delta) + d.delta))


def make_optimizer(trainables: Trainables, recipe: TuneRecipe) -> torch.optim.AdamW:
    """AdamW: decay on the plain parameters, none on the deltas (their decay is :func:`decay_full_weights`)."""
    groups = []
    if trainables.deltas:
        groups.append({"params": [d.delta for d in trainables.deltas], "weight_decay": 0.0})
    if trainables.parameters:
        groups.append({"params": list(trainables.parameters), "weight_decay": recipe.weight_decay})
    if not groups:
        raise ValueError("nothing to train: the model has no layers the trainable set names")
    return torch.optim.AdamW(groups, lr=recipe.learning_rate, betas=recipe.betas)


def run_tuning(step_loss: Callable[[int, torch.Generator], torch.Tensor], trainables: Trainables, recipe: TuneRecipe,
               progress: Progress | None = None, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Run ``recipe.steps`` optimisation steps; returns the loss of every step.

    Each step: ``loss = step_loss(step, generator)``, backward, clip the gradient norm of
    every trained tensor to ``max_grad_norm``, decay the full weights of the deltas, one
    AdamW step. ``on_step(step, loss)`` and ``progress(step + 1, steps)`` follow each step
    (in ComfyUI the progress bar is also the cancel point). A non-finite loss stops the
    run with an error naming the step.
    """
    generator = torch.Generator(device="cpu").manual_seed(recipe.seed)
    optimizer = make_optimizer(trainables, recipe)
    params = trainables.all_parameters()
    losses: list[float] = []
    for step in range(recipe.steps):
        optimizer.zero_grad(set_to_none=True)
        loss = step_loss(step, generator)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"the tuning loss became {value} at step {step + 1} of {recipe.steps}; lower "
                                     f"learning_rate (now {recipe.learning_rate:g}) or use training_dtype fp32")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        decay_full_weights(trainables.deltas, recipe.learning_rate, recipe.weight_decay)
        optimizer.step()
        losses.append(value)
        if on_step is not None:
            on_step(step, value)
        notify(progress, step + 1, recipe.steps)
    optimizer.zero_grad(set_to_none=True)
    return losses


def loss_summary(losses: list[float]) -> dict:
    """Headline numbers of a loss curve: first / last / min, and the means of the first and last tenth."""
    if not losses:
        raise ValueError("no losses to summarise")
    tenth = max(1, len(losses) // 10)
    head, tail = losses[:tenth], losses[-tenth:]
    return {"steps": len(losses), "first": losses[0], "last": losses[-1], "min": min(losses),
            "mean_first_tenth": sum(head) / len(head), "mean_last_tenth": sum(tail) / len(tail)}
