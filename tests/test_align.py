"""Align Edited Clip's maths: another model's frames and size mapped back onto the source, then composited."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drive_ops.composite.align import RESIZE_POLICIES, align_edited_clip, map_frames, place
from drive_ops.composite.compositing import composite_background, composite_video
from drive_ops.core.mask_morphology import grow_mask
from drive_ops.evaluate.metrics import check_pair

TINT = torch.tensor([0.92, 1.0, 1.08])   # a foreign model's colour shift


def _smooth_clip(t: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Low-frequency frames ``[t,h,w,3]``: detail a resampling round trip keeps, so misplacement shows."""
    coarse = torch.rand(t, 3, h // 8 + 2, w // 8 + 2, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1).movedim(1, -1)


def _resize(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    chw = F.interpolate(frames.movedim(-1, 1), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return chw.movedim(1, -1)


def _foreign(source: torch.Tensor, policy: str, size: int = 720) -> torch.Tensor:
    """What a model at ``size x size`` gives back for ``source`` fitted under ``policy`` (written out by hand here:
    core Upscale Image with crop disabled / center, core Resize And Pad Image), tinted."""
    _, h, w, _ = source.shape
    if policy == "stretch":
        out = _resize(source, size, size)
    elif policy == "crop_centre":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2     # the test clips' crop margins are whole pixels
        out = _resize(source[:, top:top + side, left:left + side], size, size)
    else:
        scale = min(size / h, size / w)
        ch, cw = int(h * scale), int(w * scale)
        out = torch.zeros(source.shape[0], size, size, 3)
        top, left = (size - ch) // 2, (size - cw) // 2
        out[:, top:top + ch, left:left + cw] = _resize(source, ch, cw)
    return (out * TINT).clamp(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _box_mask(t: int, h: int, w: int) -> torch.Tensor:
    m = torch.zeros(t, h, w)
    m[:, h // 3: h // 3 + h // 4, w // 4: w // 4 + w // 3] = 1.0
    return m


# ---------------------------------------------------------------- frames


@pytest.mark.parametrize("source,edited,offset,stride,expected", [
    (10, 10, 0, 1, list(range(10))),
    (79, 81, 2, 1, list(range(2, 79))),           # a VACE segment, padded to 81 frames, from frame 2
    (81, 41, 0, 2, list(range(0, 81, 2))),        # made from every second frame
    (10, 6, -3, 2, [1, 3, 5, 7]),                 # extra frames in front of the clip (edited 0, 1 fall before)
    (10, 3, 9, 1, [9]),                           # only the last frame overlaps
    (10, 4, -3, 1, [0]),                          # only the first frame overlaps
])
def test_frame_mapping(source, edited, offset, stride, expected):
    mapping = map_frames(source, edited, offset, stride)
    assert mapping.source_indices == expected
    assert [mapping.source_index(j) for j in range(mapping.edited_start, mapping.edited_stop)] == expected
    assert all(0 <= s < source for s in expected)


@pytest.mark.parametrize("source,edited,offset,stride,needles", [
    (10, 5, 0, 0, ("frame_stride must be at least 1", "got 0")),
    (10, 5, 0, -2, ("frame_stride must be at least 1",)),
    (10, 5, 10, 1, ("frame_offset 10 is beyond the source's last frame", "10 frames, 0..9")),
    (79, 81, 200, 1, ("frame_offset 200 is beyond",)),
    (10, 5, -5, 1, ("ends before the source starts", "-5..-1", "raise frame_offset")),
    (10, 3, -9, 4, ("ends before the source starts", "-9..-1")),
])
def test_unalignable_frames_are_refused_with_the_reason(source, edited, offset, stride, needles):
    with pytest.raises(ValueError) as err:
        map_frames(source, edited, offset, stride)
    assert all(n in str(err.value) for n in needles), str(err.value)


def test_edited_frames_land_on_their_source_frames_and_the_rest_keeps_the_source():
    source = torch.rand(12, 8, 10, 3, generator=torch.Generator().manual_seed(0))
    edited = torch.arange(7).float().view(7, 1, 1, 1).expand(7, 8, 10, 3) / 10 + 0.05   # frame j holds j/10 + .05
    before = (source.clone(), edited.clone())
    aligned = align_edited_clip(source, edited, offset=-1, stride=2)
    # edited j -> source 2j - 1: j = 1..6 land on 1, 3, 5, 7, 9, 11; j = 0 falls before the clip
    for s in range(12):
        if s % 2:
            assert torch.equal(aligned.image[s], edited[(s + 1) // 2]), s
            assert bool((aligned.covered[s] == 1).all())
        else:
            assert torch.equal(aligned.image[s], source[s]), s
            assert bool((aligned.covered[s] == 0).all())
    assert aligned.notes == ["edited frames 0..0 fall before the source's first frame and are left out"]
    assert torch.equal(source, before[0]) and torch.equal(edited, before[1]), "an input was modified"


def test_dropped_tail_is_noted():
    aligned = align_edited_clip(torch.rand(79, 8, 8, 3), torch.rand(81, 8, 8, 3), offset=2)
    assert aligned.notes == ["edited frames 77..80 fall after the source's last frame and are left out"]


# ---------------------------------------------------------------- space


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_same_size_and_frames_give_the_edit_back_bit_for_bit(policy):
    source, edited = torch.rand(5, 24, 40, 3), torch.rand(5, 24, 40, 4)   # an RGBA edit: alpha is dropped
    mask = _box_mask(5, 24, 40)
    aligned = align_edited_clip(source, edited, policy=policy, mask=mask)
    assert torch.equal(aligned.image, edited[..., :3])
    assert bool((aligned.covered == 1).all()) and torch.equal(aligned.mask, mask)
    assert aligned.notes == []


def test_placements_match_cores_resize_nodes():
    # 9:16 1080x1920 into 720x720: Upscale Image (crop center) keeps rows 420..1499; Resize And Pad puts a
    # 405x720 picture 157 px from the left
    assert place(1920, 1080, 720, 720, "crop_centre").source_box == (420, 0, 1080, 1080)
    assert place(1920, 1080, 720, 720, "pad").edit_box == (0, 157, 720, 405)
    assert place(1920, 1080, 720, 720, "stretch").source_box == (0, 0, 1920, 1080)
    assert place(480, 832, 720, 1280, "crop_centre").source_box == (6, 0, 468, 832)    # 16:9 from 832x480
    assert place(480, 832, 720, 1280, "pad").edit_box == (0, 16, 720, 1248)
    with pytest.raises(ValueError, match="unknown resize policy 'squash'"):
        place(10, 10, 10, 10, "squash")


@pytest.mark.parametrize("policy", RESIZE_POLICIES)
def test_each_policy_puts_the_edit_back_where_it_came_from(policy):
    source = _smooth_clip(3, 128, 72, 1)                                       # 9:16
    aligned = align_edited_clip(source, _foreign(source, policy), policy=policy)
    covered = aligned.covered.bool()
    target = (source * TINT).clamp(0, 1)
    psnr = _psnr(aligned.image[covered], target[covered])
    shifted = _psnr(aligned.image[:, 2:][covered[:, 2:]], target[:, :-2][covered[:, 2:]])   # 2 px off, for scale
    assert psnr > 40 and psnr > shifted + 8, (psnr, shifted)
    assert torch.equal(aligned.image[~covered], source[~covered])
    if policy == "crop_centre":   # 72x72 of 72x128 is shown: rows 28..99
        assert torch.equal(covered[0].any(1), (torch.arange(128) >= 28) & (torch.arange(128) < 100))
    else:
        assert bool(covered.all())


def test_a_wrong_policy_shows_as_misalignment():
    source = _smooth_clip(2, 128, 72, 2)
    right = align_edited_clip(source, _foreign(source, "pad"), policy="pad").image
    wrong = align_edited_clip(source, _foreign(source, "pad"), policy="stretch").image
    target = (source * TINT).clamp(0, 1)
    assert _psnr(right, target) > _psnr(wrong, target) + 15


def test_mask_in_the_edits_terms_is_aligned_like_the_frames():
    source = torch.rand(10, 128, 72, 3)
    drawn = torch.zeros(12, 720, 720)
    drawn[:, 300:420, 300:420] = 1.0                    # VACE's mask, at the edit's frames and size
    aligned = align_edited_clip(source, torch.rand(12, 720, 720, 3), offset=3, policy="crop_centre", mask=drawn)
    assert aligned.mask.shape == (10, 128, 72)
    assert bool((aligned.mask[:3] == 0).all())          # frames 0..2: no edit
    # 720 px of the edit show 72 source px from row 28: 300..420 -> 30..42, columns 30..42
    hard = aligned.mask[5] > 0.5
    rows, cols = hard.any(1).nonzero().flatten(), hard.any(0).nonzero().flatten()
    assert (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])) == (58, 69, 30, 41)


def test_mask_in_the_sources_terms_is_limited_to_the_coverage():
    source = torch.rand(6, 32, 18, 3)
    aligned = align_edited_clip(source, torch.rand(3, 16, 16, 3), offset=2, policy="crop_centre",
                                mask=torch.ones(32, 18))
    assert torch.equal(aligned.mask, aligned.covered)
    assert aligned.covered[2:5].sum() == 3 * 18 * 18 and aligned.covered[[0, 1, 5]].sum() == 0


def test_a_mask_at_neither_size_is_refused():
    with pytest.raises(ValueError, match=r"the mask is 9x9 px with 1 frames; give it in the source's terms \(18x32"):
        align_edited_clip(torch.rand(6, 32, 18, 3), torch.rand(3, 16, 16, 3), mask=torch.ones(9, 9))
    with pytest.raises(ValueError, match="or in the edit's \\(16x16, 1 or 3 frames\\)"):
        align_edited_clip(torch.rand(6, 32, 18, 3), torch.rand(3, 16, 16, 3), mask=torch.ones(4, 16, 16))


# ---------------------------------------------------------------- the finish on a foreign output


def test_foreign_output_aligned_then_composited_keeps_every_pixel_outside_the_mask():
    """A VACE-like output: 81 frames at 720x720 (4n+1, padded past the clip's end) of a 9:16 clip's
    frames 2..78, upscaled 10x and tinted. Aligned then composited, every pixel outside the mask is the
    source's, bit for bit; inside it is the edit, in the right place."""
    source = _smooth_clip(79, 128, 72, 3)
    vace = torch.cat([_foreign(source[2:], "crop_centre"), torch.zeros(4, 720, 720, 3)])
    assert vace.shape == (81, 720, 720, 3)
    object_mask = _box_mask(79, 128, 72)
    with pytest.raises(ValueError, match="81 frames but the original has 79.*Align Edited Clip"):
        composite_video(vace, source, object_mask)
    aligned = align_edited_clip(source, vace, offset=2, policy="crop_centre", mask=object_mask)
    out = composite_video(aligned.image, source, aligned.mask, grow=2, feather=1.5)
    outside = grow_mask(aligned.mask, 2) <= 0
    assert torch.equal(out[outside], source[outside])
    assert torch.equal(out[:2], source[:2])             # frames the edit does not cover
    inside = object_mask.bool() & aligned.covered.bool()
    inside[:, :, :] &= grow_mask(object_mask, -3).bool()  # away from the feathered rim
    assert _psnr(out[inside], (source * TINT).clamp(0, 1)[inside]) > 40


def test_the_finish_refuses_mismatched_clips_naming_the_align_node():
    source, vace = torch.rand(9, 32, 18, 3), torch.rand(9, 64, 64, 3)
    mask = torch.zeros(9, 32, 18)
    with pytest.raises(ValueError, match=r"edited frames are 64x64 px but the original is 18x32.*Align Edited Clip"):
        composite_video(vace, source, mask)
    with pytest.raises(ValueError, match=r"background frames are 64x64 px.*Align Edited Clip"):
        composite_video(source, source, mask, background=vace)
    with pytest.raises(ValueError, match=r"7 frames but the original has 9.*Align Edited Clip"):
        composite_background(source[:7], source, mask)
    with pytest.raises(ValueError, match=r"has 7 frames but the video has 9.*Align Edited Clip"):
        composite_video(source, source, mask[:7])
    with pytest.raises(ValueError, match=r"source clip has 9 frames but the edited clip has 81.*Align Edited Clip"):
        check_pair(source, torch.rand(81, 32, 18, 3))
    with pytest.raises(ValueError, match=r"edited frames are 64x64.*Align Edited Clip"):
        check_pair(source, vace)
