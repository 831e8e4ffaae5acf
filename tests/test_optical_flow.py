import torch

from drive_ops.core.optical_flow import dis_flow, occlusion_mask, warp_backward


def textured_frame(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0] \
        .clamp(0, 1).movedim(0, -1)


def test_dis_recovers_a_translation_and_warp_undoes_it():
    base = textured_frame(96, 128)
    shifted = torch.roll(base, shifts=(2, 3), dims=(0, 1))  # content moves +3 px in x, +2 px in y
    flow = dis_flow(base, shifted)
    inner = (slice(16, -16), slice(16, -16))
    assert torch.allclose(flow[inner][..., 0].median(), torch.tensor(3.0), atol=0.3)
    assert torch.allclose(flow[inner][..., 1].median(), torch.tensor(2.0), atol=0.3)
    back = warp_backward(shifted, flow)
    assert (back[inner] - base[inner]).abs().mean() < 0.02


def test_warp_with_zero_flow_is_identity():
    img = torch.rand(10, 12, 3)
    assert torch.allclose(warp_backward(img, torch.zeros(10, 12, 2)), img, atol=1e-6)
    m = torch.rand(10, 12)
    assert torch.allclose(warp_backward(m, torch.zeros(10, 12, 2)), m, atol=1e-6)


def test_occlusion_check():
    fw = torch.zeros(20, 20, 2)
    fw[..., 0] = 2.0
    bw = -fw
    occ = occlusion_mask(fw, bw)
    assert not occ[:, :18].any() and occ[:, 18:].all()  # last columns leave the frame
    bad_bw = torch.zeros(20, 20, 2)
    assert occlusion_mask(fw, bad_bw)[:, :18].all()
