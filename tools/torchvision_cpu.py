"""Let ComfyUI import PyPI's torchvision next to a CPU-only torch (test environments only).

ComfyUI imports torchvision at start-up; the node pack itself never does. PyPI's Linux
torchvision wheels are CUDA builds whose ``_C.so`` needs libtorch_cuda, so on CPU torch
the extension fails to load and ``import torchvision`` then stops in its meta
registrations with "operator torchvision::nms does not exist". tools/setup_env.sh copies
this file into the test venv's site-packages with a ``.pth`` line that calls
:func:`install`: a finder that, on the first ``import torchvision`` and only when the
extension cannot load, defines ``torchvision::nms`` and ``torchvision::qnms`` with a plain
PyTorch kernel. The pure-Python parts of torchvision then work; the C++-only operators
(roi_pool, deform_conv2d, image decoding) stay unavailable, and ComfyUI does not need them
for SD1.5. ``DRIVE_TORCHVISION_CPU=0`` turns it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path

_LIBRARY = []  # the torch.library.Library must outlive the import


def greedy_nms(boxes, scores, iou_threshold: float):
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first.

    boxes ``[N,4]`` as x1, y1, x2, y2; scores ``[N]``; the contract of ``torchvision.ops.nms``.
    """
    import torch

    order = torch.argsort(scores, descending=True, stable=True)
    ordered = boxes[order].double()
    x1, y1, x2, y2 = ordered.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    alive = torch.ones(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        overlap = w * h
        iou = overlap / (area[i] + area - overlap)
        alive &= ~(iou > iou_threshold)
    return order[torch.tensor(keep, dtype=torch.long)].to(boxes.device)


def _extension_loads(package_dirs) -> bool:
    import torch

    for folder in package_dirs:
        for name in ("_C.so", "_C_stable.so"):
            library = Path(folder) / name
            if library.exists():
                try:
                    torch.ops.load_library(str(library))
                    return True
                except (OSError, RuntimeError):
                    return False
    return False


def _define_operators() -> None:
    import torch

    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.impl("nms", greedy_nms, "CPU")
    _LIBRARY.append(library)


class _PatchedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        from torchvision.ops import boxes

        boxes._assert_has_ops = lambda: None  # nms and batched_nms run on the kernel above


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)  # one look is enough, whatever it finds
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or _extension_loads(spec.submodule_search_locations or []):
            return spec
        _define_operators()
        spec.loader = _PatchedLoader(spec.loader)
        return spec


def install() -> None:
    """Register the finder (once, before torchvision is imported, unless switched off)."""
    if os.environ.get("DRIVE_TORCHVISION_CPU") == "0" or "torchvision" in sys.modules:
        return
    if not any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFinder())
