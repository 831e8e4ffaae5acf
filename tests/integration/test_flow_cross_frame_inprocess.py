"""Cross-frame attention on a Flux transformer, in-process on the tiny random Flux (ComfyUI's own model).

The patch reaches Flux's joint attention (double and single blocks) through core's
``optimized_attention_override``: each frame keeps its own text tokens and takes its
sources' image tokens. Checked: the override's K/V for one call against a hand-built
reference; identical frames sample exactly as without the patch while distinct frames do
not; every block is reached; the user's MODEL never carries the patch; the grid shuffle and
STEM are refused naming what works.
"""

from __future__ import annotations

import pytest
import torch

from inprocess_fixtures import pack  # noqa: F401 (fixtures)
from test_flow_inprocess import _edit, _flux_cond, _invert, _latent, _tiny_flux, _tiny_flux2

pytestmark = pytest.mark.integration
FRAMES = 4


@pytest.fixture(scope="module")
def flux(pack):
    return _tiny_flux()


def _patch(pack, model, mode: str = "pix2video", anchor: int = 0, include_self: bool = False):
    return pack("nodes.patches.attention").apply_cross_frame_patch(model, mode, anchor, include_self, "all", 0.0, 1.0)


def _sdpa(q, k, v, heads, **kwargs):
    """Plain attention over [B, H, L, D] (what core's attention function would do), heads merged like Flux's."""
    out = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def test_the_override_gives_each_frame_its_own_text_and_the_sources_image_kv(pack, flux):
    attention = pack("nodes.patches.attention")
    assert attention.attention_target(flux) == "flux"
    patched = _patch(pack, flux, "pix2video", anchor=1)
    override = patched.model_options["transformer_options"]["optimized_attention_override"]
    text, image, heads, dim = 5, 16, 2, 8
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2 * FRAMES, heads, text + image, dim, generator=g) for _ in range(3))
    options = {attention.JOINT_TOKENS_KEY: (text, image), "cond_or_uncond": [0, 1]}
    out = override(_sdpa, q, k, v, heads, skip_reshape=True, mask=None, transformer_options=options)
    sources = {0: (1, 1), 1: (1, 1), 2: (1, 1), 3: (1, 2)}   # pix2video, anchor 1: (anchor, neighbour toward it)
    for branch in range(2):
        for f in range(FRAMES):
            row = branch * FRAMES + f
            keys = torch.cat([t for s in sources[f] for t in (k[row, :, :text], k[branch * FRAMES + s, :, text:])], 1)
            values = torch.cat([t for s in sources[f] for t in (v[row, :, :text], v[branch * FRAMES + s, :, text:])],
                               1)
            expected = _sdpa(q[row:row + 1], keys[None], values[None], heads)
            assert torch.allclose(out[row:row + 1], expected, atol=1e-5), f"branch {branch} frame {f}"
    plain = override(_sdpa, q, k, v, heads, skip_reshape=True, mask=None, transformer_options={})
    assert torch.equal(plain, _sdpa(q, k, v, heads))   # outside a patched Flux call it is plain attention


def _check_identical_and_distinct_frames(pack, model, channels: int, cond: list, other: list, cfg: float) -> None:
    """Identical frames sample as without the patch, distinct ones do not; every joint attention took two
    sources' K/V; the user's MODEL is untouched."""
    calls = []

    def spy(func, q, k, v, heads, **kwargs):
        calls.append((k.shape[2], q.shape[2], kwargs["transformer_options"].get("block_type")))
        return func(q, k, v, heads, **kwargs)

    spied = model.clone()
    spied.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = spy
    patched = _patch(pack, spied, "sparse_causal")
    before = dict(model.model_options.get("transformer_options", {}))
    same = _latent(1, channels).expand(FRAMES, -1, -1, -1).clone()
    noise_floor = 0.0
    for latent, identical in ((same, True), (_latent(FRAMES, channels), False)):
        inv = _invert(pack, model, cond, {"samples": latent}, 3, "ddim")
        plain = _edit(pack, model, other, cond, inv, 3, cfg=cfg, grid=1, shuffle=False)["samples"]
        calls.clear()
        crossed = _edit(pack, patched, other, cond, inv, 3, cfg=cfg, grid=1, shuffle=False)["samples"]
        assert calls and all(kl == 2 * ql for kl, ql, _ in calls), "every joint attention got two sources' K/V"
        blocks = {b for _, _, b in calls}
        assert blocks == {None} or blocks == {"double", "single"}   # 0.33 names the block types; 0.3.64 does not
        assert len(calls) % 2 == 0   # one double + one single block per model call
        diff = float((crossed - plain).abs().max())
        print(f"cfg {cfg}, identical frames {identical}: max |cross-frame - plain| {diff:.3e}")
        if identical:
            assert torch.allclose(crossed, plain, rtol=1e-4, atol=1e-5), diff
            noise_floor = diff
        else:   # the tiny random FLUX.2's outputs are small (std 0.02 weights): compare with the float noise
            assert diff > max(1e-6, 10 * noise_floor), (diff, noise_floor)
    assert model.model_options.get("transformer_options", {}) == before
    assert "optimized_attention_override" not in model.model_options.get("transformer_options", {})


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_identical_frames_sample_as_without_the_patch_and_distinct_ones_do_not(pack, flux, cfg):
    _check_identical_and_distinct_frames(pack, flux, 16, _flux_cond(1), _flux_cond(2), cfg)


@pytest.mark.min_core("0.33.0")
def test_flux2_takes_cross_frame_attention_too(pack):
    model = _tiny_flux2()
    assert pack("nodes.patches.attention").attention_target(model) == "flux"
    cond, other = ([[torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(s)), {}]] for s in (1, 2))
    _check_identical_and_distinct_frames(pack, model, 128, cond, other, 3.0)


def test_the_grid_shuffle_stem_and_decoder_layers_are_refused_naming_what_works(pack, flux):
    patched = _patch(pack, flux)
    cond = _flux_cond(1)
    inv = _invert(pack, flux, cond, {"samples": _latent(FRAMES, 16)}, 2, "ddim")
    with pytest.raises(ValueError, match="whole clip in one model call"):
        _edit(pack, patched, cond, cond, inv, 2, cfg=1.0, grid=2, shuffle=True)
    attention = pack("nodes.patches.attention")
    with pytest.raises(ValueError, match="no decoder blocks"):
        attention.apply_cross_frame_patch(flux, "pix2video", 0, False, "decoder", 0.0, 1.0)
    with pytest.raises(ValueError, match="STEM attention patches UNet models.*cross-frame attention does work on Flux"):
        attention.apply_stem_patch(flux)
