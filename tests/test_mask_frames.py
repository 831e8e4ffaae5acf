import pytest
import torch

from drive_ops.core.mask_frames import match_mask_frames


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
