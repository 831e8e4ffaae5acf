import torch
import torch.nn.functional as F

from drive_ops.core.mask_morphology import feather_mask, grow_mask


def reference_dilate(mask: torch.Tensor, r: int) -> torch.Tensor:
    """Brute-force max over every disk offset."""
    h, w = mask.shape[-2:]
    p = F.pad(mask, (r, r, r, r))
    out = torch.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r:
                out = torch.maximum(out, p[:, r + dy:r + dy + h, r + dx:r + dx + w])
    return out


def test_grow_matches_bruteforce_disk():
    g = torch.Generator().manual_seed(0)
    m = (torch.rand(2, 23, 31, generator=g) > 0.93).float()
    for r in (1, 2, 5):
        assert torch.equal(grow_mask(m, r), reference_dilate(m, r))


def test_shrink_is_dual_of_grow_and_zero_is_copy():
    m = torch.zeros(1, 20, 20)
    m[:, 5:15, 5:15] = 1
    assert torch.equal(grow_mask(m, -2), 1 - grow_mask(1 - m, 2))
    assert grow_mask(m, -2).sum() == 36
    out = grow_mask(m, 0)
    assert torch.equal(out, m) and out.data_ptr() != m.data_ptr()


def test_feather_keeps_range_and_mass():
    m = torch.zeros(1, 40, 40)
    m[:, 10:30, 10:30] = 1
    f = feather_mask(m, 4)
    assert f.shape == m.shape and f.min() >= 0 and f.max() <= 1
    assert abs(f.sum() - m.sum()) < 1e-2 * m.sum()
    assert torch.equal(feather_mask(m, 0), m)
