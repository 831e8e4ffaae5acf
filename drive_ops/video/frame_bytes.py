"""IMAGE frames to 8-bit pixels for the encoders: cache-sized blocks, one reused buffer, a thread ahead.

Why: at 1080p, turning a float frame into bytes the whole-frame way (multiply, round,
clamp, cast: four passes over 25 MB) took 8-13% of Save Video, on the encoder's critical
path. Here each block of ``ROWS`` rows is scaled, rounded and clamped in place in a small
float scratch that stays in cache and cast once into a preallocated uint8 frame; the edge
padding yuv420p needs is written into the same buffer. numpy runs it on one core and
releases the GIL, so :func:`prefetch` overlaps it with the encoder's own threads.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

import numpy as np
import torch

ROWS = 32
"""Rows per block: 32 rows of 1080p RGB float are 0.7 MiB, inside a core's L2 cache."""

T = TypeVar("T")


class PixelConverter:
    """Frames ``[H,W,C]`` (float 0..1, any device and dtype) to one reused uint8 buffer ``[H+pad_h, W+pad_w, 3]``.

    Values are ``round(255 * v)`` (half to even) clamped to 0..255, bit for bit what
    ``(frame * 255).round().clamp(0, 255)`` gives; grey (C = 1) is repeated to RGB and a
    fourth (alpha) channel is dropped. ``pad_h`` / ``pad_w`` rows / columns repeat the last
    one. The returned array is overwritten by the next call: copy it (``av.VideoFrame.from_ndarray``
    does) before converting the next frame.
    """

    def __init__(self, height: int, width: int, pad_h: int = 0, pad_w: int = 0, rows: int = ROWS):
        self.height, self.width, self.pad_h, self.pad_w = height, width, pad_h, pad_w
        self.rows = rows
        self.out = np.empty((height + pad_h, width + pad_w, 3), dtype=np.uint8)
        self._scratch = np.empty((rows, width, 3), dtype=np.float32)

    def __call__(self, frame: torch.Tensor) -> np.ndarray:
        if tuple(frame.shape[:2]) != (self.height, self.width) or frame.shape[-1] not in (1, 3, 4):
            raise ValueError(f"expected a frame [{self.height},{self.width},C] with C = 1, 3 or 4, "
                             f"got {tuple(frame.shape)}")
        pixels = frame.detach()
        if pixels.device.type != "cpu" or pixels.dtype != torch.float32:
            pixels = pixels.to(device="cpu", dtype=torch.float32)
        source = pixels.numpy()[..., :3]
        h, w = self.height, self.width
        for top in range(0, h, self.rows):
            block = source[top:top + self.rows]
            scratch = self._scratch[:block.shape[0]]
            np.multiply(block, 255.0, out=scratch)
            np.rint(scratch, out=scratch)
            np.clip(scratch, 0.0, 255.0, out=scratch)
            np.copyto(self.out[top:top + block.shape[0], :w], scratch, casting="unsafe")
        if self.pad_w:
            self.out[:h, w:] = self.out[:h, w - 1:w]
        if self.pad_h:
            self.out[h:] = self.out[h - 1:h]
        return self.out


_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` as a background thread produces them, at most ``depth`` ahead of the consumer.

    An exception in the producer is raised here, at the item where it happened. When the
    consumer stops early (an error, a cancel, ``close()``), the producer is told to stop and
    joined before this generator returns, so no thread outlives the caller's ``with`` block.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as err:  # handed to the consumer, re-raised there
            put((_DONE, err))

    worker = threading.Thread(target=produce, name="drive-frame-bytes", daemon=True)
    worker.start()
    try:
        while True:
            item, err = ready.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
