"""The learned feature network and decoder at a working size (frames larger than the scale
they were trained at)."""

import torch
import torch.nn.functional as F

from cinemagraph.render.decode import CompositingDecoder, SplattedFrame
from cinemagraph.spacetime import DecodeRules, LearnedDecoder, LearnedFeatures, SpaceTimeModel
from cinemagraph.spacetime.components import shrink as _shrink


def _model() -> SpaceTimeModel:
    g = torch.Generator().manual_seed(5)
    model = SpaceTimeModel("small", DecodeRules(band_px=9, crack_px=9, fluid_px=0)).eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(model.img_decoder.outc.conv.bias, 0.4)
    return model


def _frame(model, h, w, hole=None, seed=0) -> SplattedFrame:
    g = torch.Generator().manual_seed(seed)
    alpha = 0.5 + 0.5 * torch.rand(1, 1, h, w, generator=g)
    if hole is not None:
        alpha[..., hole[0]:hole[1], hole[2]:hole[3]] = 0.0
    feats = torch.rand(1, 4 + model.feature_channels, h, w, generator=g)
    feats[:, 3:4] = 1.0
    return SplattedFrame(feats * alpha, alpha, 1 + torch.rand(1, 1, h, w, generator=g),
                         torch.randn(1, 2, h, w, generator=g))


def test_frames_within_the_working_size_decode_as_before():
    model = _model()
    fwd, bwd = _frame(model, 48, 64, (20, 28, 8, 16)), _frame(model, 48, 64, seed=1)
    with torch.no_grad():
        want = model.decode(fwd, bwd, 0.25)
    for size in (None, 64, 100):
        got = LearnedDecoder(model, "d", work_size=size)(fwd, bwd, 0.25)
        assert torch.equal(got, want.clamp(0, 1))


def test_a_larger_frame_gets_the_correction_made_at_the_working_size():
    model = _model()
    fwd = _frame(model, 96, 128, (40, 56, 16, 32))
    decoder = LearnedDecoder(model, "d", work_size=64)
    got = decoder(fwd, None, 0.0)
    base = CompositingDecoder()(fwd, None, 0.0)
    assert got.shape == (1, 3, 96, 128)
    small = _shrink(fwd, (48, 64))
    with torch.no_grad():
        correction = model.decode(small, None, 0.0).clamp(0, 1) - CompositingDecoder()(small, None, 0.0)
    want = (base + F.interpolate(correction, size=(96, 128), mode="bilinear",
                                 align_corners=False)).clamp(0, 1)
    assert torch.allclose(got, want, atol=1e-6)
    # The hole changes; far from it (9 px of the working size, 18 here, and the enlargement's
    # pixel) the built-in composite stays exactly.
    assert (got - base)[..., 40:56, 16:32].abs().mean() > 1e-2
    assert torch.equal(got[..., :, 72:], base[..., :, 72:])
    # No holes (frame 0 at the source camera): the built-in composite, exactly.
    full = _frame(model, 96, 128, seed=3)
    assert torch.equal(decoder(full, None, 0.0), CompositingDecoder()(full, None, 0.0))


def test_shrinking_a_splat_keeps_uniform_values_and_scales_the_displacement():
    h, w = 40, 60
    alpha = torch.ones(1, 1, h, w)
    alpha[..., :, :30] = 0.5
    depth = torch.full((1, 1, h, w), 3.0)
    colour = torch.rand(1, 5, 1, 1)
    feats = colour.expand(1, 5, h, w) * alpha
    shift = torch.tensor([4.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, h, w)
    small = _shrink(SplattedFrame(feats, alpha, depth, shift), (20, 30))
    assert torch.allclose(small.depth, torch.full((1, 1, 20, 30), 3.0))
    assert torch.allclose(small.alpha[..., :, :15], torch.full((1, 1, 20, 15), 0.5))
    assert torch.allclose(small.features / small.alpha, colour.expand(1, 5, 20, 30))
    assert torch.allclose(small.displacement, shift[..., :20, :30] / 2)


def _layers(seed: int, layers: int = 2, h: int = 64, w: int = 96):
    from cinemagraph.ldi.scene import LayeredDepthImage

    g = torch.Generator().manual_seed(seed)
    coverage = torch.rand(layers, 1, h, w, generator=g) > 0.2
    return LayeredDepthImage(torch.rand(layers, 3, h, w, generator=g),
                             1 + torch.rand(layers, 1, h, w, generator=g), coverage, coverage,
                             torch.zeros(layers, 2, h, w), torch.ones(layers, 1, h, w))


def _shrunk_features(model, ldi, shape):
    """The feature network on ``ldi``'s layers shrunk to ``shape``, enlarged back."""
    cover = ldi.coverage.float()
    rgba = F.interpolate(torch.cat([ldi.color * cover, cover], 1), size=shape, mode="area")
    with torch.no_grad():
        return F.interpolate(model.feature_map(rgba), size=ldi.size, mode="bilinear",
                             align_corners=False)


def test_features_of_large_layers_come_from_the_shrunk_layers():
    model, ldi = _model(), _layers(2)
    with torch.no_grad():
        whole = model.features(ldi)
    assert torch.equal(LearnedFeatures(model, "f", work_size=96)(ldi), whole)
    got = LearnedFeatures(model, "f", work_size=48)(ldi)
    assert got.shape == whole.shape
    assert torch.equal(got[:, :4], whole[:, :4])  # colour and the constant channel as they are
    assert torch.allclose(got[:, 4:], _shrunk_features(model, ldi, (32, 48)), atol=1e-6)
    assert (got[:, 4:] - whole[:, 4:]).abs().max() > 1e-4


def test_the_render_components_run_ours_at_the_working_size_and_say_so(tmp_path):
    from cinemagraph.spacetime import WORK_SIZE, learned_components, save_spacetime

    save_spacetime(_model(), tmp_path / "w.safetensors")
    features, decoder = learned_components(tmp_path / "w.safetensors")
    assert features.work_size == decoder.work_size == WORK_SIZE
    assert f"run at {WORK_SIZE} px on larger frames" in decoder.description
    features, decoder = learned_components(tmp_path / "w.safetensors", work_size=None)
    assert features.work_size is None and "run at the frame's size" in decoder.description


def test_the_border_of_the_layers_does_not_count_towards_the_working_size():
    from dataclasses import replace

    model, ldi = _model(), _layers(3)
    bordered = replace(ldi, border=8)  # a 48x80 photo with 8 px of border on every side
    assert bordered.photo_size == (48, 80)
    with torch.no_grad():
        whole = model.features(ldi)
    # The photo fits the working size: the layers go through whole, border and all (without
    # the border they would be shrunk, to 80 px).
    assert torch.equal(LearnedFeatures(model, "f", work_size=80)(bordered), whole)
    assert not torch.equal(LearnedFeatures(model, "f", work_size=80)(ldi), whole)
    # A photo larger than it: shrunk by the photo's factor (40 / 80), the border included.
    got = LearnedFeatures(model, "f", work_size=40)(bordered)
    assert torch.allclose(got[:, 4:], _shrunk_features(model, ldi, (32, 48)), atol=1e-6)


def test_the_scene_says_how_far_its_layers_extend_past_the_photo():
    from cinemagraph.motion.field import MotionField
    from cinemagraph.pipeline import build_scene

    image = torch.rand(1, 3, 24, 32)
    depth = 1 + torch.rand(1, 1, 24, 32)
    motion = MotionField(torch.zeros(1, 2, 24, 32), torch.zeros(1, 1, 24, 32, dtype=torch.bool))
    scene = build_scene(image, depth, motion, steps=2, border=0.25)
    assert scene.ldi.border == 8
    assert scene.ldi.size == (40, 48) and scene.ldi.photo_size == (24, 32)
    assert build_scene(image, depth, motion, steps=2).ldi.border == 0
