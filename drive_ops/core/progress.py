"""The one progress-callback convention of the pack: ``progress(done, total)``.

Every long operation in drive_ops takes ``progress: Progress | None`` and calls it with
the number of units finished so far and the number there will be, after each unit:
``done`` rises 1, 2, ..., ``total`` (a chunked loop may step by more than one, but it
never goes down and it ends at ``total``). That is the signature of ComfyUI's
``ProgressBar.update_absolute(value, total)``, so a node passes
``comfy.utils.ProgressBar(total).update_absolute`` straight through, and each call is also
ComfyUI's cancel point. (Increments, ``update(1)``, would leave such a bar stuck at 1.)

The k-diffusion samplers' per-step ``callback({"x", "i", "sigma", ...})`` is a different
contract, ComfyUI's sampler callback, and keeps its own form.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[int, int], None]
"""``progress(done, total)``: ``done`` of ``total`` units are finished."""


def notify(progress: Progress | None, done: int, total: int) -> None:
    """Call ``progress(done, total)`` when there is a callback."""
    if progress is not None:
        progress(done, total)


def stage(progress: Progress | None, offset: int, total: int) -> Progress:
    """A callback for one stage of a longer operation, reported on the whole operation's scale.

    The stage counts its own units from 0 (with its own total, ignored here); the caller
    sees ``offset + done`` of ``total``.
    """
    return lambda done, _stage_total: notify(progress, offset + done, total)
