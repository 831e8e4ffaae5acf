"""SAM 2 / SAMURAI tracking: random-weight SAM2 tiny at 256 px through the node's code path,
variant detection, SAMURAI's re-ranking and memory selection, checkpoint loading."""

from __future__ import annotations

import sys

import pytest
import torch

from drive_ops.masks.prompts import build_prompts, parse_boxes, parse_points
from drive_ops.masks.samurai import (FrameScore, SamuraiConfig, SamuraiSelector, kf_score_weight_for,
                                      select_memory_frames)
from drive_ops.masks.tracking import track_masks, tracked_frame_count

T, H, W = 5, 48, 64


@pytest.fixture(scope="module")
def sam2_tiny():
    pytest.importorskip("sam2", reason="sam2 is optional; tools/setup_env.sh installs it")
    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_sam2_video_model(Sam2Variant("2.1", "tiny"), image_size=256)


def _clip() -> tuple[torch.Tensor, torch.Tensor]:
    """A bright square sliding right over a dark textured background: frames and true masks."""
    gen = torch.Generator().manual_seed(1)
    frames = torch.rand(T, H, W, 3, generator=gen) * 0.3
    masks = torch.zeros(T, H, W)
    for t in range(T):
        x = 8 + 4 * t
        frames[t, 14:34, x:x + 20] = torch.tensor([0.9, 0.8, 0.2])
        masks[t, 14:34, x:x + 20] = 1
    return frames, masks


def _check(out: torch.Tensor, frames_count: int) -> None:
    assert out.shape == (frames_count, H, W)
    assert out.dtype == torch.float32
    assert set(out.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("kind", ["points", "box", "mask", "samurai"])
def test_every_prompt_kind_tracks_end_to_end(sam2_tiny, kind):
    frames, truth = _clip()
    steps: list[tuple[int, int]] = []
    kwargs = dict(points={"positive_points": '[{"x": 20, "y": 24}]', "negative_points": '[{"x": 2, "y": 2}]'},
                  box={"bboxes": [(8, 14, 28, 34)]},
                  mask={"mask": truth[2:3]},
                  samurai={"positive_points": '[{"x": 20, "y": 24}]', "samurai": SamuraiConfig()})[kind]
    frame_index = 2 if kind == "mask" else 0
    frames_before = frames.clone()
    out = track_masks(sam2_tiny, frames, frame_index=frame_index, progress=lambda done, total: steps.append((done, total)), **kwargs)
    _check(out, T)
    assert torch.equal(frames, frames_before)
    total = tracked_frame_count([frame_index], T)
    assert steps == [(i, total) for i in range(1, total + 1)]
    assert sam2_tiny._samurai is None
    if kind == "mask":
        # a mask prompt is its own output on the prompt frame (use_mask_input_as_output)
        inter = (out[2] * truth[2]).sum()
        assert float(inter / (out[2] + truth[2] - out[2] * truth[2]).sum()) > 0.9


def test_several_objects_merged_or_each(sam2_tiny):
    frames, _ = _clip()
    pts = '[{"x": 20, "y": 24}, {"x": 55, "y": 40}]'
    each = track_masks(sam2_tiny, frames, positive_points=pts, individual_objects=True, per_object_output=True,
                       offload_video_to_cpu=False, offload_state_to_cpu=True)
    _check(each, 2 * T)
    merged = track_masks(sam2_tiny, frames, positive_points=pts, individual_objects=True)
    assert torch.equal(merged, torch.maximum(each[:T], each[T:]))
    with pytest.raises(ValueError, match="single object"):
        track_masks(sam2_tiny, frames, positive_points=pts, individual_objects=True, samurai=SamuraiConfig())


def test_samurai_state_resets_between_runs(sam2_tiny):
    frames, _ = _clip()
    runs = [track_masks(sam2_tiny, frames, frame_index=1, bboxes=[8, 14, 28, 34], samurai=SamuraiConfig())
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def _square(cx: float, cy: float, size: int = 10, hw: int = 96) -> torch.Tensor:
    m = torch.full((hw, hw), -1.0)
    m[int(cy - size / 2):int(cy + size / 2), int(cx - size / 2):int(cx + size / 2)] = 1.0
    return m


def test_kalman_reranking_prefers_the_predicted_box():
    cfg = SamuraiConfig()
    sel = SamuraiSelector(cfg)
    for t in range(cfg.stable_frames_threshold):
        # initiation, then warm-up: the highest predicted IoU wins, and no KF score is reported
        best, kf_score = sel.select(torch.stack([_square(20 + 2 * t, 40), _square(80, 80)]), torch.tensor([0.9, 0.5]))
        assert best == 0 and kf_score is None
    assert sel.stable_frames == cfg.stable_frames_threshold
    t = cfg.stable_frames_threshold
    on_track, off_track = _square(20 + 2 * t, 40), _square(80, 10)
    # stable: 0.25 * kf_iou + 0.75 * iou ranks the candidate on the track first
    best, kf_score = sel.select(torch.stack([off_track, on_track]), torch.tensor([0.9, 0.8]))
    assert best == 1 and kf_score > 0.7
    # without the motion model, SAM 2's own choice would be the off-track one
    best, _ = SamuraiSelector(cfg).select(torch.stack([off_track, on_track]), torch.tensor([0.9, 0.8]))
    assert best == 0
    # a chosen mask below the stable IoU threshold restarts the filter
    sel.select(torch.stack([on_track]), torch.tensor([0.1]))
    assert sel.stable_frames == 0


def test_memory_selection_skips_poor_frames():
    cfg = SamuraiConfig()
    good = FrameScore(0.9, 2.0, 0.8)
    scores = {i: good for i in range(1, 20)}
    scores[18] = FrameScore(0.2, 2.0, 0.8)      # low IoU
    scores[16] = FrameScore(0.9, -0.5, 0.8)     # object absent
    scores[15] = FrameScore(0.9, 2.0, -0.1)     # off the motion track
    assert select_memory_frames(20, scores, cfg) == [11, 12, 13, 14, 17, 19]
    # the previous frame always counts, even when poor
    scores[19] = FrameScore(0.1, -3.0, 0.0)
    assert select_memory_frames(20, scores, cfg)[-1] == 19
    # backwards in time the walk goes up
    assert select_memory_frames(0, {i: good for i in range(1, 10)}, cfg, reverse=True) == [6, 5, 4, 3, 2, 1]


def test_prompt_parsing():
    assert parse_points('[{"x": 1, "y": 2.5}, {"x": 3, "y": 4}]') == [(1.0, 2.5), (3.0, 4.0)]
    assert parse_points("[[1, 2]]") == [(1.0, 2.0)] and parse_points("") == []
    with pytest.raises(ValueError, match="JSON"):
        parse_points("{x: 1}")
    assert parse_boxes([1, 2, 3, 4]) == [(1.0, 2.0, 3.0, 4.0)]
    with pytest.raises(ValueError, match="empty"):
        parse_boxes([[5, 5, 1, 1]])
    mask = torch.zeros(20, 20)
    mask[1:4, 1:4] = 1
    mask[10:15, 10:15] = 1
    prompts = build_prompts(3, positive=[(2, 2)], negative=[(9, 9)], boxes=[(0, 0, 5, 5)], mask=mask,
                            individual_objects=True)
    assert [p.obj_id for p in prompts] == [0, 1, 2, 3]
    assert prompts[1].labels == [1, 0] and prompts[0].labels == [0]
    with pytest.raises(ValueError, match="prompt"):
        build_prompts(0)


@pytest.mark.parametrize("version", ["2", "2.1"])
@pytest.mark.parametrize("size", ["tiny", "small", "base_plus", "large"])
def test_variant_detection_from_shapes(version, size, monkeypatch):
    pytest.importorskip("sam2")
    from drive_ops.masks.sam2_build import Sam2Variant, build_sam2_video_model, detect_sam2_variant

    # meta tensors: every key and shape of the real checkpoint, no memory. Hiera reads
    # its drop-path schedule with .item(), which meta tensors cannot answer: keep that one on the CPU
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *a, **k: linspace(*a, **{**k, "device": "cpu"}))
    model = build_sam2_video_model(Sam2Variant(version, size), device="meta")
    assert detect_sam2_variant(model.state_dict()) == Sam2Variant(version, size)


def test_checkpoint_files_load(sam2_tiny, tmp_path):
    from safetensors.torch import save_file

    from drive_ops.masks.sam2_build import detect_sam2_variant, load_sam2_model

    sd = {k: v.contiguous() for k, v in sam2_tiny.state_dict().items()}
    torch.save({"model": sd}, tmp_path / "t.pt")
    save_file(sd, str(tmp_path / "t.safetensors"))
    model, variant = load_sam2_model(tmp_path / "t.pt", "fp32", image_size=256)
    assert variant.label == "sam2.1_hiera_tiny"
    torch.testing.assert_close(model.state_dict()["obj_ptr_proj.layers.0.weight"], sd["obj_ptr_proj.layers.0.weight"])
    model, _ = load_sam2_model(tmp_path / "t.safetensors", "bf16", image_size=256)
    assert model.autocast_dtype == torch.bfloat16
    frames, _ = _clip()
    _check(track_masks(model, frames[:2], bboxes=[8, 14, 28, 34]), 2)
    with pytest.raises(ValueError, match="not a SAM 2 checkpoint"):
        detect_sam2_variant({"foo": torch.zeros(1)})
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt .* is not a PyTorch checkpoint"):
        load_sam2_model(tmp_path / "bad.pt")


def test_missing_sam2_names_the_install_recipe(monkeypatch):
    from drive_ops.masks.sam2_predictor import import_sam2

    monkeypatch.setitem(sys.modules, "sam2", None)
    monkeypatch.setitem(sys.modules, "sam2.modeling.sam2_base", None)
    with pytest.raises(ImportError, match="SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0"):
        import_sam2()


def test_memory_view_swaps_only_mask_memory():
    from drive_ops.masks.samurai import SamuraiRun, samurai_memory_view

    cfg = SamuraiConfig()
    run = SamuraiRun(cfg, SamuraiSelector(cfg))
    non_cond = {i: {"maskmem_features": f"mem{i}", "maskmem_pos_enc": f"pos{i}", "obj_ptr": f"ptr{i}"}
                for i in range(1, 12)}
    run.scores = {i: FrameScore(0.9, 1.0, None) for i in non_cond}
    run.scores[11] = run.scores[10] = FrameScore(0.1, 1.0, None)   # 11 is kept anyway (previous frame)
    view = samurai_memory_view(run, 12, {"cond_frame_outputs": {}, "non_cond_frame_outputs": non_cond}, False, 7)
    slots = view["non_cond_frame_outputs"]
    # memory of the previous frame, then the five best before it skipping frame 10
    assert [slots[12 - k]["maskmem_features"] for k in range(1, 7)] == ["mem11", "mem9", "mem8", "mem7", "mem6", "mem5"]
    assert [slots[12 - k]["obj_ptr"] for k in range(1, 7)] == [f"ptr{12 - k}" for k in range(1, 7)]
    assert non_cond[10]["maskmem_features"] == "mem10"          # the real outputs are untouched


def test_samurai_motion_weight_follows_the_model_size():
    assert kf_score_weight_for("large", 0.25) == 0.15                 # SAMURAI's large config
    assert kf_score_weight_for("base_plus", 0.25) == 0.25
    assert kf_score_weight_for("large", 0.3) == 0.3                   # set by the user: used as set
    assert kf_score_weight_for(None, 0.25) == SamuraiConfig().kf_score_weight == 0.25
