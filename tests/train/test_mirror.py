"""The learned feature network and decoder averaged with the mirrored scene (the render's
second opinion on the same splats)."""

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.ldi.scene import LayeredDepthImage
from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
from cinemagraph.models.spacetime import (LearnedDecoder, LearnedFeatures, SpaceTimeModel,
                                          _mirror_frame, learned_components, load_spacetime,
                                          save_spacetime)


def _model() -> SpaceTimeModel:
    g = torch.Generator().manual_seed(5)
    model = SpaceTimeModel("small", correction="band", band_px=9).eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(model.img_decoder.outc.conv.bias, 0.4)
    return model


def _ldi(seed=2, layers=2, h=32, w=48) -> LayeredDepthImage:
    g = torch.Generator().manual_seed(seed)
    coverage = torch.rand(layers, 1, h, w, generator=g) > 0.2
    return LayeredDepthImage(torch.rand(layers, 3, h, w, generator=g),
                             1 + torch.rand(layers, 1, h, w, generator=g), coverage, coverage,
                             torch.zeros(layers, 2, h, w), torch.ones(layers, 1, h, w))


def _mirrored_ldi(ldi: LayeredDepthImage) -> LayeredDepthImage:
    flow = ldi.flow.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
    return LayeredDepthImage(ldi.color.flip(-1), ldi.depth.flip(-1), ldi.visible.flip(-1),
                             ldi.coverage.flip(-1), flow, ldi.depth_field.flip(-1))


def _splat(features, seed=0, hole=(10, 18, 6, 14)) -> SplattedFrame:
    """A frame as one layer at the source camera would splat ``features (1, C, H, W)``, with a
    hole and a random displacement."""
    g = torch.Generator().manual_seed(seed)
    h, w = features.shape[-2:]
    alpha = 0.5 + 0.5 * torch.rand(1, 1, h, w, generator=g)
    alpha[..., hole[0]:hole[1], hole[2]:hole[3]] = 0.0
    return SplattedFrame(features * alpha, alpha, 1 + torch.rand(1, 1, h, w, generator=g),
                         torch.randn(1, 2, h, w, generator=g))


def test_the_points_carry_the_mirrored_layers_features_after_their_own():
    model, ldi = _model(), _ldi()
    c = model.feature_channels
    with torch.no_grad():
        plain = LearnedFeatures(model, "f")(ldi)
        both = LearnedFeatures(model, "f", mirror=True)(ldi)
        of_mirrored = model.features(_mirrored_ldi(ldi))
    assert LearnedFeatures(model, "f", mirror=True).channels == both.shape[1] == 4 + 2 * c
    assert torch.equal(both[:, :4 + c], plain)
    assert torch.allclose(both[:, 4 + c:], of_mirrored[:, 4:].flip(-1), atol=1e-6)
    # Not the same features: the network is no mirror-symmetric function of its input.
    assert (both[:, 4 + c:] - both[:, 4:4 + c]).abs().max() > 1e-3
    # At a working size as well.
    large = _ldi(h=64, w=96)
    small = LearnedFeatures(model, "f", work_size=48, mirror=True)(large)
    assert torch.equal(small[:, :4 + c], LearnedFeatures(model, "f", work_size=48)(large))


def test_mirroring_a_splat_negates_the_displacement_along_x():
    frame = _splat(torch.rand(1, 5, 8, 12))
    mirrored = _mirror_frame(frame)
    assert torch.equal(mirrored.features, frame.features.flip(-1))
    assert torch.equal(mirrored.depth, frame.depth.flip(-1))
    assert torch.equal(mirrored.displacement[:, 0], -frame.displacement[:, 0].flip(-1))
    assert torch.equal(mirrored.displacement[:, 1], frame.displacement[:, 1].flip(-1))
    assert _mirror_frame(None) is None


def test_the_averaged_frame_is_the_mean_of_both_passes_and_mirror_equivariant():
    model, ldi = _model(), _ldi()
    c = model.feature_channels
    feats = LearnedFeatures(model, "f", mirror=True)
    decoder = LearnedDecoder(model, "d", mirror=True)
    plain = LearnedDecoder(model, "d")
    # The holes overlap, so the blended frame has one (the band's correction applies there).
    fwd, bwd = _splat(feats(ldi)[:1]), _splat(feats(ldi)[1:], seed=1, hole=(12, 20, 8, 18))
    got = decoder(fwd, bwd, 0.25)

    def part(frame, own):
        f = frame.features
        return frame._replace(features=f[:, :4 + c] if own else torch.cat([f[:, :4], f[:, 4 + c:]], 1))

    mirrored_pass = plain(_mirror_frame(part(fwd, False)), _mirror_frame(part(bwd, False)), 0.25)
    own_pass = plain(part(fwd, True), part(bwd, True), 0.25)
    assert torch.allclose(got, 0.5 * (own_pass + mirrored_pass.flip(-1)), atol=1e-6)
    assert (own_pass - mirrored_pass.flip(-1)).abs().max() > 1e-3  # two opinions differ

    # The mirrored scene (its layers mirrored, so its points carry the same features with
    # the halves swapped) gives the mirrored frame: the average has no handedness.
    mfeats = feats(_mirrored_ldi(ldi))
    assert torch.allclose(mfeats[:, 4:4 + c], feats(ldi)[:, 4 + c:].flip(-1), atol=1e-6)
    assert torch.allclose(mfeats[:, 4 + c:], feats(ldi)[:, 4:4 + c].flip(-1), atol=1e-6)
    mfwd, mbwd = (_mirror_frame(f)._replace(features=m * _mirror_frame(f).alpha)
                  for f, m in ((fwd, mfeats[:1]), (bwd, mfeats[1:])))
    assert torch.allclose(decoder(mfwd, mbwd, 0.25), got.flip(-1), atol=1e-5)


def test_mirrored_decoding_leaves_covered_frames_and_untrained_weights_as_compositing():
    model, ldi = _model(), _ldi()
    feats = LearnedFeatures(model, "f", mirror=True)(ldi)[:1]
    full = _splat(feats, hole=(0, 0, 0, 0))  # no holes: the band is empty
    decoder = LearnedDecoder(model, "d", mirror=True)
    assert torch.equal(decoder(full, None, 0.0), CompositingDecoder()(full, None, 0.0))
    untrained = SpaceTimeModel("small", correction="band", band_px=9).eval()
    holed = _splat(LearnedFeatures(untrained, "f", mirror=True)(ldi)[:1])
    got = LearnedDecoder(untrained, "d", mirror=True)(holed, None, 0.0)
    assert torch.allclose(got, CompositingDecoder()(holed, None, 0.0), atol=1e-6)
    # At a working size too.
    large = _splat(LearnedFeatures(model, "f", mirror=True)(_ldi(h=64, w=96))[:1])
    out = LearnedDecoder(model, "d", work_size=48, mirror=True)(large, None, 0.0)
    assert out.shape == (1, 3, 64, 96)


def test_the_weight_file_keeps_the_mirror_and_the_render_components_follow_it(tmp_path):
    model = _model()
    save_spacetime(model, tmp_path / "plain.safetensors")
    model.mirror = True
    save_spacetime(model, tmp_path / "mirror.safetensors")
    assert not load_spacetime(tmp_path / "plain.safetensors").mirror
    assert load_spacetime(tmp_path / "mirror.safetensors").mirror
    features, decoder = learned_components(tmp_path / "mirror.safetensors")
    assert features.mirror and decoder.mirror
    assert "averaged with the mirrored scene" in decoder.description
    features, decoder = learned_components(tmp_path / "mirror.safetensors", mirror=False)
    assert not (features.mirror or decoder.mirror)
    assert "mirrored" not in decoder.description
    features, decoder = learned_components(tmp_path / "plain.safetensors", mirror=True)
    assert features.mirror and decoder.mirror


def test_a_malformed_mirror_flag_is_a_one_line_error(tmp_path):
    from safetensors.torch import load_file, save_file

    save_spacetime(_model(), tmp_path / "w.safetensors")
    state = load_file(tmp_path / "w.safetensors")
    save_file(state, tmp_path / "bad.safetensors",
              metadata={"preset": "small", "correction": "band", "band_px": "9", "mirror": "yes"})
    with pytest.raises(UserError, match="malformed mirror flag"):
        load_spacetime(tmp_path / "bad.safetensors")
