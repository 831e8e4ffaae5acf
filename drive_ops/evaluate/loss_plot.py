"""A training loss curve drawn into an IMAGE tensor ``[1,H,W,3]`` (matplotlib's Agg canvas, no pyplot state)."""

from __future__ import annotations

import numpy as np
import torch


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start), same length as ``values``."""
    x = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], x]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - window)
    return (sums[idx] - sums[lo]) / (idx - lo)


def plot_loss_curve(losses: list[float], title: str, width: int = 800, height: int = 400,
                    dpi: int = 100) -> torch.Tensor:
    """Per-step losses (dots) and their moving average over a tenth of the run, float32 RGB ``[1,height,width,3]``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not losses:
        raise ValueError("no losses to plot")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 10)
    ax.plot(steps, losses, ".", markersize=3, color="tab:blue", alpha=0.5, label="step loss")
    ax.plot(steps, moving_average(losses, window), color="tab:red", label=f"mean of {window} steps")
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("eps MSE", fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float32)[..., :3] / 255.0
    return torch.from_numpy(rgba.copy()).unsqueeze(0)
