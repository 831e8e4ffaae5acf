"""What the benchmarks share: the repository's paths, one peak-memory probe, clip loading.

Benchmarks run as modules from the repository root (``python -m bench.quality``), so
``drive_ops`` and the tests' helpers (``tests.tiny_unet``) import without path tweaks.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
"""The reference clips beside the checkout (never committed into it)."""


class PeakMemory:
    """Peak memory a block needs above the level at its start, in bytes: ``with PeakMemory(device) as m: ...; m.peak``.

    The same meaning on every device: on CUDA the allocator's peak during the block minus
    what was allocated when it began; on the CPU the process's resident set, sampled every
    ``interval`` seconds and once more at the end, minus the resident set when it began.
    ``total`` is the peak itself, the start level (model weights, caches) included.
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.005):
        self.device = torch.device(device)
        self.interval = interval
        self.peak = 0
        self._start = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        self._proc = psutil.Process()
        self._start = self._proc.memory_info().rss
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.peak = max(self.peak, self._proc.memory_info().rss - self._start)

    def _poll(self) -> None:
        while self._running:
            self._sample()
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._start
            return
        self._running = False
        self._thread.join()
        self._sample()

    @property
    def mib(self) -> float:
        return self.peak / 2**20

    @property
    def total(self) -> int:
        return self._start + self.peak


def load_clip(name: str | Path, frames: int = 0, size: int = 512, square: bool = False) -> torch.Tensor:
    """A clip from ``DATA`` (or any path) as ``[T,H,W,3]`` float 0..1, decoded by the pack's own loader.

    ``frames`` caps the count (0 = all). The longer side is fit to ``size`` (the loader's
    ``fit_longer_side``, cropped to a multiple of 8); with ``square`` the frames are scaled
    to cover ``size x size`` and centre-cropped to it.
    """
    from drive_ops.core.frame_plan import apply_frame_plan
    from drive_ops.core.frame_plan_inverse import cover_plan
    from drive_ops.video.decode import load_video

    path = Path(name) if Path(name).is_file() else DATA / name
    if not path.is_file():
        raise SystemExit(f"{path} is absent: the clips live in shared/data beside the checkout")
    if not square:
        return load_video(str(path), frame_load_cap=frames, size_policy="fit_longer_side", longer_side=size,
                          with_audio=False).frames
    video = load_video(str(path), frame_load_cap=frames, with_audio=False).frames
    return apply_frame_plan(video, cover_plan(video.shape[1], video.shape[2], size, size), mode="area")


COMFY_VERSION = "0.3.64"
COMFY_ARCHIVE = "comfyui-0.3.64-a125cd84.tar.gz"
COMFY_ARCHIVE_SHA256 = "4be89530537cd12a841f2f6ad9c94896ffc0b50b28c4c6bad882d45c32a0b4ca"
"""The source archive tools/setup_env.sh extracts (../shared/comfyui beside the checkout)."""


def ensure_comfyui(cache: Path | None = None) -> Path:
    """A ComfyUI 0.3.64 folder for in-process benchmarks, set as ``COMFYUI_DIR``; extracted on first use.

    ``COMFYUI_DIR`` when set; else ``.cache/ComfyUI-0.3.64`` of the checkout (tools/setup_env.sh's);
    else that folder extracted from the source archive, found in ``.cache/`` (copy it there to carry
    the checkout to another machine) or in ``../shared/comfyui``, checked against its sha256.
    """
    import hashlib
    import os
    import shutil
    import tarfile

    if os.environ.get("COMFYUI_DIR"):
        return Path(os.environ["COMFYUI_DIR"])
    cache = cache or REPO / os.environ.get("DRIVE_CACHE", ".cache")
    target = cache / f"ComfyUI-{COMFY_VERSION}"
    if not (target / "main.py").is_file():
        archive = next((p for p in (cache / COMFY_ARCHIVE, REPO.parent / "shared" / "comfyui" / COMFY_ARCHIVE)
                        if p.is_file()), None)
        if archive is None:
            raise SystemExit(f"no ComfyUI: set COMFYUI_DIR, run tools/setup_env.sh, or put {COMFY_ARCHIVE} "
                             f"into {cache}")
        if hashlib.sha256(archive.read_bytes()).hexdigest() != COMFY_ARCHIVE_SHA256:
            raise SystemExit(f"{archive} does not match ComfyUI {COMFY_VERSION}'s sha256; copy it again")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        partial.rename(target)
    os.environ["COMFYUI_DIR"] = str(target)
    return target
