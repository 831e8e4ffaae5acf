"""The committed testbed weights (loaded, never retrained): the sha256 check and its errors, and
quality gates through drive_ops.

Thresholds come from numbers measured on these weights (testbed/weights/record.json), with
margin; the issue's bars (AE PSNR >= 28 dB, colour right in >= 90% of samples) are never
lowered below.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from testbed import evaluate, load, world


@pytest.fixture(scope="module")
def tb() -> load.Testbed:
    missing = load.missing_files()
    if missing and os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:  # in CI they must be there
        pytest.skip(f"testbed weights missing ({', '.join(p.name for p in missing)}); "
                    f"train them with `{load.RETRAIN_COMMAND}`")
    return load.load_testbed()  # checks every file's sha256 against the record; in CI a missing file fails here


def test_weight_files_are_the_recorded_ones(tb):
    record = json.loads((load.WEIGHTS_DIR / load.RECORD).read_text())
    total = sum(info["bytes"] for info in record["files"].values())
    assert set(record["files"]) == set(load.FILES.values())
    assert total <= 25_000_000, f"weights are {total / 1e6:.1f} MB"
    assert record["command"] == load.RETRAIN_COMMAND
    for stage in ("ae", "unet", "eval"):
        assert record["stages"][stage]["wall_s"] > 0 and record["stages"][stage]["command"]
    assert record["environment"]["torch"] and record["environment"]["threads"] >= 1


@pytest.fixture
def fake_weights(tmp_path):
    """A weights folder with small stand-in files and a record of their sha256."""
    files = {}
    for i, fname in enumerate(load.FILES.values()):
        (tmp_path / fname).write_bytes(bytes([i]) * 100)
        files[fname] = {"sha256": load.sha256(tmp_path / fname), "bytes": 100}
    (tmp_path / load.RECORD).write_text(json.dumps({"files": files}))
    return tmp_path


def test_weight_check_passes_on_the_recorded_files(fake_weights):
    load.check_files(fake_weights)
    assert load.missing_files(fake_weights) == []


@pytest.mark.parametrize("damage", ["delete", "corrupt", "lfs_pointer", "unrecorded", "no_record"])
def test_damaged_weights_fail_with_the_fix(fake_weights, damage):
    unet = fake_weights / load.FILES["unet"]
    if damage == "delete":
        unet.unlink()
    elif damage == "corrupt":
        unet.write_bytes(b"\x01" * 99)
    elif damage == "lfs_pointer":
        unet.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 100\n")
    elif damage == "unrecorded":
        record = json.loads((fake_weights / load.RECORD).read_text())
        del record["files"][load.FILES["unet"]]
        (fake_weights / load.RECORD).write_text(json.dumps(record))
    else:
        (fake_weights / load.RECORD).unlink()
    with pytest.raises(load.WeightsError) as err:
        load.load_testbed(fake_weights)  # the check comes before any file is read as weights
    message = str(err.value)
    assert load.RETRAIN_COMMAND in message and "git checkout" in message, message
    expected = {"delete": "unet.safetensors is missing", "corrupt": "not the recorded",
                "lfs_pointer": "not the recorded", "unrecorded": "records no sha256 for unet.safetensors",
                "no_record": "record.json is missing"}[damage]
    assert expected in message, message
    if damage in ("delete", "no_record"):
        assert load.missing_files(fake_weights)


def test_the_committed_weights_load_from_a_copy(tb, tmp_path):
    """The sha256 check is what load_testbed() relies on: a byte-for-byte copy passes, one flipped byte fails."""
    for fname in [load.RECORD, *load.FILES.values()]:
        shutil.copy(load.WEIGHTS_DIR / fname, tmp_path / fname)
    load.check_files(tmp_path)
    path = tmp_path / load.FILES["text_encoder"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(load.WeightsError, match="not the recorded"):
        load.check_files(tmp_path)


def test_networks_have_the_configured_shapes(tb):
    context, pooled = tb.text_context(["a red ball on a blue striped background", ""])
    assert context.shape == (2, 16, 128) and pooled.shape == (2, 128)
    assert not torch.allclose(context[0], context[1])
    assert [n for n in tb.unet.attn_processors if ".attn1." in n and n.startswith("down_blocks")]
    assert [n for n in tb.unet.attn_processors if ".attn1." in n and n.startswith("up_blocks")]
    assert all(not p.requires_grad for p in tb.unet.parameters())


def test_autoencoder_psnr_on_heldout_frames(tb):
    assert evaluate.autoencoder_psnr(tb.autoencoder, n=64) >= 28.0


def test_latents_have_sd15_scale(tb):
    frames, _ = world.image_batch(world.heldout_seeds(64, offset=300))
    scaled = tb.encode(frames) * tb.latent_scale
    assert scaled.shape == (64, 4, 8, 8)
    assert 0.85 < float(scaled.std()) < 1.15


def test_encode_decode_take_comfy_images(tb):
    clip = world.make_clip(world.HELDOUT_START + 40, frames=3, size=(64, 96))
    latents = tb.encode(torch.from_numpy(clip.frames))
    assert latents.shape == (3, 4, 8, 12)
    images = tb.decode(latents)
    assert images.shape == (3, 64, 96, 3) and 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    with pytest.raises(ValueError, match="multiples of 8"):
        tb.encode(torch.zeros(1, 60, 64, 3))


@pytest.fixture(scope="module")
def generations(tb):
    """20 held-out single-object captions at 20 DDIM steps, cfg 7.5 and cfg 1 (same noise)."""
    captions = evaluate.single_object_captions(20, offset=1000)
    return {cfg: evaluate.generation_accuracy(tb, captions, steps=20, cfg=cfg) for cfg in (7.5, 1.0)}


def test_generation_renders_the_captioned_colour(generations):
    r = generations[7.5]
    assert r["colour_accuracy"] >= 0.9, r["colour_accuracy"]
    assert r["shape_accuracy"] >= SHAPE_FLOOR, r["shape_accuracy"]


def test_classifier_free_guidance_sharpens_shapes(generations):
    """Measured: cfg 1 already renders the captioned colour (20/20 here, 120/120 at 50 steps), so guidance
    cannot raise colour accuracy; what it raises is shape accuracy (18/20 -> 20/20; 0.883 -> 1.0 at 50 steps)."""
    with_cfg, without = generations[7.5], generations[1.0]
    assert with_cfg["colour_accuracy"] >= without["colour_accuracy"]
    assert with_cfg["shape_accuracy"] >= without["shape_accuracy"] + CFG_SHAPE_GAIN, \
        (with_cfg["shape_accuracy"], without["shape_accuracy"])


def test_ddim_inversion_reconstructs(tb):
    r = evaluate.inversion_psnr(tb, n=4, steps=20, offset=700)
    assert r["psnr_vs_ae_roundtrip_db"] >= INVERSION_FLOOR_DB, r


# Floors from the committed weights with margin (measured with these tests' settings: 20 held-out
# captions, 20 DDIM steps; inversion 4 frames, 20 steps), see testbed/weights/record.json for 50 steps.
SHAPE_FLOOR = 0.85         # measured 1.0 (20/20)
CFG_SHAPE_GAIN = 0.05      # measured +0.10 (1.0 vs 0.9)
INVERSION_FLOOR_DB = 35.0  # measured 39.0 dB against the AE round trip (27.5 dB against the frames)
