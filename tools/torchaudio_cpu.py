"""Let ComfyUI 0.33 import PyPI's torchaudio next to a CPU-only torch (test environments only).

ComfyUI 0.33 imports torchaudio at start-up (its audio VAEs and encoders); the node pack
never does. PyPI's torchaudio 2.11 wheel ships ``lib/_torchaudio.so`` linked against
libtorch_cuda, so on CPU torch loading it raises ``OSError`` and ``import torchaudio``
fails. torchaudio already runs without its extension when the library file is absent;
this makes a library that is present but cannot load count the same, so the pure-PyTorch
parts (``functional``, ``transforms``, resampling) work and the C++-only ones (forced
alignment, CTC decoders, RNNT loss) say they are unavailable. tools/setup_env.sh copies
this file into the 0.33 test venv's site-packages with a ``.pth`` line that calls
:func:`install`. ``DRIVE_TORCHAUDIO_CPU=0`` turns it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

EXTENSION_LOADER = "torchaudio._extension.utils"


def tolerant(load_lib):
    """``load_lib`` that answers False ("no extension") where the library exists but cannot be loaded."""
    def load(lib: str) -> bool:
        try:
            return load_lib(lib)
        except (OSError, RuntimeError):
            return False

    return load


class _WrappingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        module._load_lib = tolerant(module._load_lib)


class _ExtensionFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != EXTENSION_LOADER:
            return None
        sys.meta_path.remove(self)  # one look is enough, whatever it finds
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = _WrappingLoader(spec.loader)
        return spec


def install() -> None:
    """Register the finder (once, before torchaudio is imported, unless switched off)."""
    if os.environ.get("DRIVE_TORCHAUDIO_CPU") == "0" or "torchaudio" in sys.modules:
        return
    if not any(isinstance(f, _ExtensionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ExtensionFinder())
