"""Harmonizer's argument regressor, our own code, laid out to load the published weights.

An EfficientNet-B0 body whose stem is replaced by two 4-channel stems (composite +
mask, composite + inverted mask), followed by a purely linear cascade of six heads,
one per filter argument (docs/algorithms.md, Harmonizer). Parameter names and shapes match
``harmonizer.pth`` exactly, so ``load_state_dict(..., strict=True)`` works on it.

The padding trap: the weights were trained with TensorFlow-style "same" padding,
which pads *asymmetrically* (more on the bottom/right) for stride-2 convolutions.
PyTorch's symmetric ``padding=k//2`` shifts every stride-2 feature map by half a
pixel and the arguments come out wrong, so every conv here pads explicitly.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.weights import WeightFileError, load_weight_file
from .color_filters import apply_filters

INPUT_SIZE = 256
BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# EfficientNet-B0 blocks: (kernel, stride, in, out, expand ratio)
B0_BLOCKS = (
    (3, 1, 32, 16, 1),
    (3, 2, 16, 24, 6), (3, 1, 24, 24, 6),
    (5, 2, 24, 40, 6), (5, 1, 40, 40, 6),
    (3, 2, 40, 80, 6), (3, 1, 80, 80, 6), (3, 1, 80, 80, 6),
    (5, 1, 80, 112, 6), (5, 1, 112, 112, 6), (5, 1, 112, 112, 6),
    (5, 2, 112, 192, 6), (5, 1, 192, 192, 6), (5, 1, 192, 192, 6), (5, 1, 192, 192, 6),
    (3, 1, 192, 320, 6),
)


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad ``[B,C,H,W]`` the way TensorFlow's "same" does: the odd pixel goes bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


class SameConv2d(nn.Conv2d):
    """A bias-free conv with TF "same" padding (the weights' key is just ``weight``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(tf_same_pad(x, self.kernel_size[0], self.stride[0]))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1, depthwise kxk, squeeze-excite, project 1x1."""

    def __init__(self, kernel: int, stride: int, cin: int, cout: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        squeezed = max(1, int(cin * 0.25))
        self._se_reduce = nn.Conv2d(mid, squeezed, 1)
        self._se_expand = nn.Conv2d(squeezed, mid, 1)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.silu(self._bn0(self._expand_conv(h)))
        h = F.silu(self._bn1(self._depthwise_conv(h)))
        se = F.adaptive_avg_pool2d(h, 1)
        se = self._se_expand(F.silu(self._se_reduce(se)))
        h = torch.sigmoid(se) * h
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class DualStemEfficientNetB0(nn.Module):
    """B0 body with separate stems for (comp, mask) and (comp, 1-mask); -> ``[B,1280,h/32,w/32]``."""

    def __init__(self):
        super().__init__()
        self._conv_fg = SameConv2d(4, 16, 3, stride=2)
        self._bn_fg = _bn(16)
        self._conv_bg = SameConv2d(4, 16, 3, stride=2)
        self._bn_bg = _bn(16)
        self._blocks = nn.ModuleList(MBConv(*spec) for spec in B0_BLOCKS)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = _bn(1280)

    def forward(self, fg_in: torch.Tensor, bg_in: torch.Tensor) -> torch.Tensor:
        fg = F.silu(self._bn_fg(self._conv_fg(fg_in)))
        bg = F.silu(self._bn_bg(self._conv_bg(bg_in)))
        x = torch.cat([fg, bg], dim=1)
        for block in self._blocks:
            x = block(x)
        return F.silu(self._bn1(self._conv_head(x)))


class CascadeRegressor(nn.Module):
    """Linear cascade: ``g_i = W_i0 [f, g_{i-1}]``, ``arg_i = W_i1 g_i``; no activations (as trained)."""

    def __init__(self, features: int = 1280, hidden: int = 160, heads: int = 6):
        super().__init__()
        self.f = nn.Linear(features, hidden)
        self.g = nn.Linear(features, hidden)
        self.headers = nn.ModuleList(
            nn.ModuleList([nn.Linear(2 * hidden, hidden), nn.Linear(hidden, 1)]) for _ in range(heads))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        f = self.f(pooled)
        g = self.g(pooled)
        args = []
        for mix, out in self.headers:
            g = mix(torch.cat([f, g], dim=1))
            args.append(out(g))
        return torch.cat(args, dim=1)


class Harmonizer(nn.Module):
    """Composite + mask -> six raw (unclamped) filter arguments, and the filters to apply them."""

    def __init__(self):
        super().__init__()
        self.backbone = DualStemEfficientNetB0()
        self.regressor = CascadeRegressor()

    @torch.no_grad()
    def predict_arguments(self, comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """comp ``[B,3,H,W]`` 0..1, mask ``[B,1,H,W]`` 0..1 -> arguments ``[B,6]`` (raw, unclamped).

        Both are resized to 256x256 (bilinear, no antialias, as at training time).
        """
        dtype = next(self.parameters()).dtype
        size = (INPUT_SIZE, INPUT_SIZE)
        comp = F.interpolate(comp.to(dtype), size=size, mode="bilinear", align_corners=False)
        mask = F.interpolate(mask.to(dtype), size=size, mode="bilinear", align_corners=False)
        feats = self.backbone(torch.cat([comp, mask], dim=1), torch.cat([comp, 1.0 - mask], dim=1))
        return self.regressor(feats.mean(dim=(2, 3))).float()

    def forward(self, comp: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the arguments and restore at full resolution -> (harmonised ``[B,3,H,W]``, args ``[B,6]``)."""
        args = self.predict_arguments(comp, mask)
        return apply_filters(comp, mask, args), args


HARMONIZER_FILE = "harmonizer.pth from the pretrained/ folder of the ZHKKKe/Harmonizer repository (or its .safetensors conversion)"
GET_HARMONIZER = ("Download harmonizer.pth again from github.com/ZHKKKe/Harmonizer (pretrained/) into models/harmonizer; "
                  "its weights are CC BY-NC-SA 4.0, non-commercial use only.")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read Harmonizer's tensor dict from ``.safetensors`` or a pickle (``weights_only=True``).

    Raises ``core.weights.WeightFileError`` naming the file, the fault and how to get a good one.
    """
    state = load_weight_file(path, HARMONIZER_FILE, GET_HARMONIZER)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightFileError(f"{Path(path).name} is not a plain state dict of tensors; it should be "
                              f"{HARMONIZER_FILE}. {GET_HARMONIZER}")
    return state


def build_harmonizer(state_dict: dict[str, torch.Tensor]) -> Harmonizer:
    """A Harmonizer in eval mode with ``state_dict`` loaded strictly (dtype follows the weights)."""
    model = Harmonizer()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape)
    if missing or unexpected or reshaped:
        raise WeightFileError(
            f"these weights are not Harmonizer's: {len(missing)} of its {len(expected)} tensors are missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} are unknown (e.g. {unexpected[:3]}), {len(reshaped)} have "
            f"another shape (e.g. {reshaped[:3]}). It should be {HARMONIZER_FILE}. {GET_HARMONIZER}")
    model.load_state_dict(state_dict, strict=True)
    dtypes = {v.dtype for v in state_dict.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        model = model.to(dtypes.pop())
    return model.eval().requires_grad_(False)


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights in Harmonizer's layout, for tests and benchmarks without the real file.

    Small weights and positive running variances keep activations in a sane range.
    """
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in Harmonizer().state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen) * 0.05
    return state
