"""Progress bars that are cancel points on every core.

ComfyUI checks for an interrupt in its progress hook, and from about 0.3.68 a ProgressBar
calls that hook at most once per 100 ms and per 0.5 % of its total: in a long loop (a
1080p clip, hundreds of frames) 0.5 % can be many seconds, so Cancel would wait for it.
Every long loop of the pack reports through these instead, which check for the interrupt
at each unit (a frame, a chunk, a step) before the bar is updated.
"""

from __future__ import annotations

from typing import Callable

import comfy.model_management
import comfy.utils

from ..drive_ops.core.progress import Progress


def progress_bar(total: int) -> Progress:
    """``progress(done, total)`` for drive_ops: a ComfyUI ProgressBar of ``total`` units, cancellable at each."""
    bar = comfy.utils.ProgressBar(total)

    def report(done: int, total_now: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total_now)

    return report


def cancellable(callback: Callable | None) -> Callable:
    """A ``comfy.sample`` callback (``callback(step, x0, x, total_steps)``, latent_preview's) that checks for an
    interrupt at every step first."""
    def step(*args) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if callback is not None:
            callback(*args)

    return step
