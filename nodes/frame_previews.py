"""Previews of every frame while a pack sampler runs (Invert Video, Masked-CFG Sampler, Pix2Video, EasyInv).

Core's previewers decode the first latent of the batch only, so a clip shows frame 0.
Here each frame is decoded by the previewer core would use (TAESD when the user has its
decoder and picked it, else latent2rgb; none when previews are off, ``--preview-method
none`` or the frontend's per-run preview setting), the frames become one animated PNG,
and it is sent on ComfyUI's preview channel, so every frontend plays it on the running
node. A :class:`PreviewThrottle` keeps the cost under 2 % of the sampling time.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import time
from typing import Callable, Iterator

import latent_preview
import torch
from PIL import Image

from ..drive_ops.core.preview_throttle import PreviewThrottle
from .animated_preview import PREVIEW_LONGER_SIDE

_CORE_PREVIEW_OFF = contextvars.ContextVar("drive_core_preview_off", default=False)


@contextlib.contextmanager
def core_preview_off() -> Iterator[None]:
    """Inside it the sampler's callback sends no frame-0 preview of its own (the one-box nodes' progress-only one)."""
    token = _CORE_PREVIEW_OFF.set(True)
    try:
        yield
    finally:
        _CORE_PREVIEW_OFF.reset(token)


def decode_frames(previewer, x0: torch.Tensor) -> list[Image.Image]:
    """Each latent of ``x0`` ``[T,C,h,w]`` through core's previewer -> T PIL images (at most 512 px a side)."""
    frames = []
    for i in range(x0.shape[0]):
        frame = previewer.decode_latent_to_preview(x0[i:i + 1])
        if max(frame.size) > PREVIEW_LONGER_SIDE:
            frame.thumbnail((PREVIEW_LONGER_SIDE, PREVIEW_LONGER_SIDE))
        frames.append(frame)
    return frames


def animated_png(frames: list[Image.Image], fps: float = 8.0) -> bytes:
    """Frames -> APNG bytes (fast compression: this is sent, not kept)."""
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0,
                   compress_level=1)
    return buf.getvalue()


class EncodedImage:
    """Finished image bytes that the server's preview senders "save" as they are (they call ``image.save``)."""

    def __init__(self, data: bytes):
        self.data = data

    def save(self, fp, *args, **kwargs) -> None:
        fp.write(self.data)


def send_preview(png: bytes) -> None:
    """Queue ``png`` on ComfyUI's preview channel, after the messages already queued (core's own frame-0 preview
    among them): with the running node's id where the frontend reads it, else the plain preview event."""
    from comfy_api import feature_flags
    from comfy_execution.utils import get_executing_context
    from protocol import BinaryEventTypes
    from server import PromptServer

    server = PromptServer.instance
    image = ("PNG", EncodedImage(png), None)  # no max size: the frames are sized already
    context = get_executing_context()
    if context is not None and feature_flags.supports_feature(server.sockets_metadata, server.client_id,
                                                              "supports_preview_metadata"):
        meta = {"node_id": context.node_id, "display_node_id": context.node_id, "real_node_id": context.node_id,
                "parent_node_id": None, "prompt_id": context.prompt_id}
        server.send_sync(BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA, (image, meta), server.client_id)
    else:
        server.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, image, server.client_id)


class ClipPreviewer:
    """Turns a sampler step's x0 into an animated preview of all frames, within the time budget."""

    def __init__(self, previewer, send: Callable[[bytes], None] = send_preview, throttle: PreviewThrottle | None = None):
        self.previewer = previewer
        self.send = send
        self.throttle = throttle or PreviewThrottle()
        self.last: bytes | None = None

    def step(self, x0: torch.Tensor, resend: bool) -> None:
        """A fresh preview when the throttle allows; else, with ``resend``, the last one again (it replaces the
        frame-0 preview core's callback has just sent, at no decoding cost)."""
        if self.throttle.due():
            started = time.perf_counter()
            self.last = animated_png(decode_frames(self.previewer, x0.detach()))
            self.send(self.last)
            self.throttle.spend(time.perf_counter() - started)
        elif resend and self.last is not None:
            self.send(self.last)


def with_clip_previews(callback: Callable | None, base_model, device: torch.device) -> Callable | None:
    """``callback(step, x0, x, total)`` followed by an all-frame preview; unchanged when previews are off."""
    previewer = latent_preview.get_previewer(device, base_model.latent_format)
    if previewer is None:
        return callback
    clips = ClipPreviewer(previewer)
    resend = not _CORE_PREVIEW_OFF.get()

    def step(i, x0, x, total_steps) -> None:
        if callback is not None:
            callback(i, x0, x, total_steps)
        if x0 is not None and x0.dim() == 4:
            clips.step(x0, resend)

    return step
