"""The Harmonizer regressor: the published key layout loads strictly, the oracle is reproduced."""

from __future__ import annotations

import json

import pytest
import torch

from drive_ops.composite import harmonizer_model
from drive_ops.composite.harmonizer_model import Harmonizer, build_harmonizer, load_state_dict_file


@pytest.fixture(scope="module")
def oracle(request):
    shared = request.getfixturevalue("shared_data")
    from safetensors.torch import load_file

    return (load_file(str(shared / "harmonizer_parity_weights.safetensors")),
            load_file(str(shared / "harmonizer_parity_io.safetensors")))


def _state_from_layout(layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


def test_published_layout_loads_strictly(shared_data):
    spec = json.loads((shared_data / "harmonizer_state_dict.json").read_text())
    layout = spec["keys"]
    assert len(layout) == spec["tensors"] == 392
    ours = Harmonizer().state_dict()
    assert {k: list(v.shape) for k, v in ours.items()} == layout
    assert sum(v.numel() for v in ours.values()) == spec["parameters_and_buffers"]
    model = build_harmonizer(_state_from_layout(layout))
    assert not model.training


def test_wrong_layout_is_refused_with_a_clear_error():
    state = Harmonizer().state_dict()
    state.pop("regressor.f.bias")
    with pytest.raises(ValueError, match="harmonizer.pth"):
        build_harmonizer(state)


def test_pth_and_safetensors_load_the_same(tmp_path):
    from safetensors.torch import save_file

    state = Harmonizer().state_dict()
    torch.save(state, tmp_path / "h.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "h.safetensors"))
    a, b = load_state_dict_file(tmp_path / "h.pth"), load_state_dict_file(tmp_path / "h.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tf_same_padding_is_asymmetric():
    x = torch.ones(1, 1, 8, 8)
    assert harmonizer_model.tf_same_pad(x, 3, 2).shape[-2:] == (9, 9)     # (0,1,0,1)
    padded = harmonizer_model.tf_same_pad(x, 5, 2)
    assert padded.shape[-2:] == (11, 11) and padded[0, 0, 1, 1] == 1 and padded[0, 0, 0, 0] == 0
    assert harmonizer_model.tf_same_pad(x, 5, 1).shape[-2:] == (12, 12)


def test_parity_with_upstream(oracle):
    weights, io = oracle
    model = build_harmonizer(weights)
    restored, args = model(io["comp"], io["mask"])
    torch.testing.assert_close(args, io["arguments"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(restored, io["restored"], atol=1e-6, rtol=1e-5)
    from drive_ops.composite.color_filters import apply_filters

    fixed = apply_filters(io["comp"], io["mask"], io["fixed_arguments"])
    torch.testing.assert_close(fixed, io["restored_fixed"], atol=1e-6, rtol=1e-5)


def test_symmetric_padding_would_break_parity(oracle, monkeypatch):
    """Guards the padding trap: PyTorch-style symmetric padding gives visibly different arguments."""
    weights, io = oracle

    def symmetric(x, kernel, stride):
        p = kernel // 2
        return torch.nn.functional.pad(x, (p, p, p, p))

    monkeypatch.setattr(harmonizer_model, "tf_same_pad", symmetric)
    args = build_harmonizer(weights).predict_arguments(io["comp"], io["mask"])
    assert (args - io["arguments"]).abs().max() > 1e-3
