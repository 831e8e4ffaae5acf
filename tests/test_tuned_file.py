"""The tuned-video-model file: tensors and metadata round-trip, a failed save leaves nothing, strangers are refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from drive_ops.diffusion import tuned_file


def _tensors() -> dict[str, torch.Tensor]:
    return {"diffusion_model.b.attn_temp.to_q.weight": torch.randn(4, 4),
            "diffusion_model.b.attn1.to_q.diff": torch.randn(4, 4).t()}


def test_round_trip(tmp_path):
    tensors, meta = _tensors(), {"recipe": {"steps": 3, "lr": 3e-5}, "losses": [0.5, 0.25]}
    path = tuned_file.save_tuned(tmp_path / "clip.safetensors", tensors, meta)
    loaded, loaded_meta = tuned_file.load_tuned(path)
    assert loaded.keys() == tensors.keys() and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert loaded_meta == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.safetensors"]


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tuned_file.save_tuned(tmp_path / "clip.safetensors", _tensors(), {"v": 1})
    before = path.read_bytes()
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        tuned_file.save_tuned(path, _tensors(), {"v": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.safetensors"]


def test_other_files_are_refused_with_the_fix(tmp_path):
    plain = tmp_path / "lora.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(ValueError, match="is not a DRIVE tuned video model"):
        tuned_file.load_tuned(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        tuned_file.load_tuned(junk)
    newer = tmp_path / "newer.safetensors"
    save_file({"x": torch.zeros(1)}, str(newer), metadata={"format": tuned_file.FORMAT, "format_version": "99"})
    with pytest.raises(ValueError, match="format version 99"):
        tuned_file.load_tuned(newer)
    with pytest.raises(ValueError, match="nothing to save"):
        tuned_file.save_tuned(tmp_path / "empty.safetensors", {}, {})
