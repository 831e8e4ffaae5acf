"""The base-model fingerprint: the same model at any precision matches, another model is refused with a reason."""

from __future__ import annotations

import torch

from drive_ops.diffusion import model_fingerprint as mf

CONFIG = {"model_channels": 32, "context_dim": 768}


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"block.{i}.weight": torch.randn(8 + i, 16, generator=g) * 0.05 for i in range(100)}


def _fp(weights: dict[str, torch.Tensor], config: dict = CONFIG) -> mf.Fingerprint:
    shapes = {k: tuple(v.shape) for k, v in weights.items()}
    return mf.fingerprint(config, shapes, {k: weights[k] for k in mf.probe_names(list(shapes))})


def test_same_weights_at_another_precision_match():
    w = _weights()
    saved = _fp(w)
    assert mf.compare(saved, _fp(w)) is None
    fp16 = _fp({k: v.half() for k, v in w.items()})
    assert fp16.hash == saved.hash, "fp32 and fp16 loads of one checkpoint get one hash"
    bf16 = _fp({k: v.bfloat16() for k, v in w.items()})
    assert mf.compare(saved, bf16) is None


def test_other_weights_are_refused_with_the_distance():
    w = _weights()
    saved = _fp(w)
    assert "weights differ" in mf.compare(saved, _fp(_weights(1)))
    nudged = {k: v * (1 + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(2)))
              for k, v in w.items()}
    reason = mf.compare(saved, _fp(nudged))
    assert reason is not None and "relative RMS difference" in reason


def test_another_layout_or_config_is_another_architecture():
    w = _weights()
    saved = _fp(w)
    reshaped = dict(w, **{"block.3.weight": torch.randn(11, 17)})
    assert "architecture differs" in mf.compare(saved, _fp(reshaped))
    assert "architecture differs" in mf.compare(saved, _fp(w, dict(CONFIG, model_channels=64)))


def test_probe_covers_the_model_evenly_and_round_trips():
    names = [f"n{i:03d}" for i in range(640)]
    picked = mf.probe_names(names)
    assert len(picked) == mf.PROBE_TENSORS and picked[0] == "n000" and picked[1] == "n010"
    assert mf.probe_names(names[:5]) == names[:5]
    values = mf.probe_values(torch.arange(1000.0))
    assert values.dtype == torch.float32 and values.tolist() == [float(i * 1000 // 32) for i in range(32)]
    saved = _fp(_weights())
    assert mf.Fingerprint.from_dict(saved.to_dict()) == saved
    assert len(saved.probe) == mf.PROBE_TENSORS * mf.PROBE_VALUES
