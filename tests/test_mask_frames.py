import pytest
import torch

from drive_ops.core.mask_frames import mask_on_frame, match_mask_frames


def test_single_frame_broadcasts():
    m = torch.rand(1, 8, 6)
    out = match_mask_frames(m, 5, 8, 6)
    assert out.shape == (5, 8, 6)
    assert torch.equal(out[3], m[0])


def test_2d_mask_and_exact_count():
    assert match_mask_frames(torch.rand(8, 6), 3).shape == (3, 8, 6)
    m = torch.rand(4, 8, 6)
    assert torch.equal(match_mask_frames(m, 4), m)


def test_mismatches_name_the_fix():
    with pytest.raises(ValueError, match="3 frames but the video has 5"):
        match_mask_frames(torch.rand(3, 8, 6), 5)
    with pytest.raises(ValueError, match="same size policy"):
        match_mask_frames(torch.rand(1, 8, 6), 5, 16, 12)


def test_mask_on_frame_picks_the_prompt_frame():
    per_frame = torch.arange(3.0).view(3, 1, 1).expand(3, 4, 5)
    assert torch.equal(mask_on_frame(per_frame, 2, 3, 4, 5), per_frame[2])
    assert torch.equal(mask_on_frame(per_frame[1:2], 2, 3, 4, 5), per_frame[1])      # one frame: drawn on frame 2
    assert torch.equal(mask_on_frame(per_frame[0], 1, 3, 4, 5), per_frame[0])        # [H,W]
    with pytest.raises(ValueError, match="has 2 frames, the video 3"):
        mask_on_frame(per_frame[:2], 0, 3, 4, 5)
    with pytest.raises(ValueError, match="prompt mask is 5x4 px but the frames are 6x4"):
        mask_on_frame(per_frame, 0, 3, 4, 6, what="prompt mask")
