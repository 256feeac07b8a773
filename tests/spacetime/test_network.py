"""The feature network and image decoder of one preset (:mod:`cinemagraph.spacetime.network`):
the residual presets start as the built-in decoder, see the composite they correct and the
displacement, decode a batch as each frame alone, and the render hands them the displacement."""

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.render.decode import CompositingDecoder, SplattedFrame
from cinemagraph.spacetime import DecodeRules, SpaceTimeModel, load_spacetime, save_spacetime
from cinemagraph.spacetime.network import COMPOSITE_CHANNELS, DISPLACEMENT_CHANNELS
from cinemagraph.spacetime.rules import (blur, displacement_channels, fluid_band, from_outside,
                                         hole_band, moving_opacity, pad16, spread, thinness)


def _correction(model, forward, backward, time, extra):
    """The residual decoder's correction ``2 (d - 0.5)`` of one frame, given its extra
    inputs ``extra (1, 8, H, W)`` (unpadded), cropped to the frame."""
    h, w = forward.alpha.shape[-2:]
    x0, x1 = (pad16(x) for x in SpaceTimeModel._maps(forward, backward))
    t = time if backward is not None else 0.0
    return 2.0 * (model.img_decoder(x0, x1, t, pad16(extra)) - 0.5)[..., :h, :w]


def test_an_untrained_residual_preset_renders_as_the_built_in_decoder():
    g = torch.Generator().manual_seed(0)
    model = SpaceTimeModel("small").eval()
    assert model.rules == DecodeRules()  # the shipped rules by default
    channels = 4 + model.feature_channels

    def frame(moving=False):
        alpha = torch.rand(1, 1, 40, 56, generator=g)
        feats = torch.rand(1, channels, 40, 56, generator=g) * alpha
        return SplattedFrame(feats, alpha, 1 + torch.rand(1, 1, 40, 56, generator=g),
                             torch.randn(1, 2, 40, 56, generator=g),
                             torch.ones(1, 1, 40, 56) if moving else None)

    fwd, bwd = frame(True), frame(True)
    with torch.no_grad():
        assert torch.allclose(model.decode(fwd, bwd, 0.3), CompositingDecoder()(fwd, bwd, 0.3),
                              atol=1e-6)
    official = SpaceTimeModel("official")
    assert not official.residual and official.rules is None
    with pytest.raises(ValueError, match="unknown preset 'tiny'"):
        SpaceTimeModel("tiny")
    # The built-in decoder's batch (the residual's base in training) fills each frame alone.
    frames = [(frame(), frame(), 0.3), (frame(), None, 0.0), (frame(), frame(), 0.8)]
    batch = CompositingDecoder().fill_batch(*map(list, zip(*frames)))[0]
    single = torch.cat([CompositingDecoder()(f, b, t) for f, b, t in frames])
    assert torch.allclose(batch, single, atol=1e-6)


def test_the_residual_decoder_sees_the_composite_it_corrects(tmp_path):
    c, d = COMPOSITE_CHANNELS, DISPLACEMENT_CHANNELS
    g = torch.Generator().manual_seed(3)
    rules = DecodeRules(band_px=15, crack_px=9, fluid_px=0)
    model = SpaceTimeModel("small", rules).eval()
    first = model.img_decoder.firstconv.weight
    assert first.shape[1] == 4 + model.feature_channels + 1 + c + d
    assert SpaceTimeModel("official").img_decoder.firstconv.weight.shape[1] == 37
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    channels = 4 + model.feature_channels
    alpha = torch.ones(1, 1, 36, 50)
    alpha[..., :10, :] = 0.0  # a band no point covers: filled, confidence 0
    feats = torch.rand(1, channels, 36, 50, generator=g)
    feats[:, 3:4] = 1.0  # the splatted ones: coverage
    fwd = SplattedFrame(feats * alpha, alpha, 1 + torch.rand(1, 1, 36, 50, generator=g))
    with torch.no_grad():
        before = model.decode(fwd, None, 0.0)
        first[:, -(c + d):-d] += 0.1 * torch.randn(first.shape[0], c, 7, 7, generator=g)
        after = model.decode(fwd, None, 0.0)
        base, confidence = CompositingDecoder().fill_batch([fwd], [None], [0.0])
        extra = torch.cat([base, confidence, torch.zeros(1, d, 36, 50)], 1)  # no displacement
        correction = _correction(model, fwd, None, 0.0, extra)
    assert (after - before).abs().max() > 1e-3  # the composite's channels reach the output
    assert confidence[..., :10, :].max() == 0 and confidence.max() == 1
    # The correction applies by the band (apply_rules): whole over the hole, fading out
    # 15 px from it, nowhere far from it.
    band = hole_band(confidence, 15, 9)
    assert band[..., :10, :].min() == 1.0 and band[..., 30:, :].max() == 0.0
    assert ((band > 0) & (band < 1)).any()
    assert torch.allclose(after, (base + band * correction).clamp(0, 1), atol=1e-6)
    assert (after - base)[..., :10, :].abs().max() > 1e-3
    assert torch.equal(after[..., 30:, :], base[..., 30:, :])
    # Weights of the layout before the composite input are refused in one line.
    old = SpaceTimeModel("small", rules)
    old.img_decoder.firstconv.weight = torch.nn.Parameter(first[:, :-(c + d)].clone())
    save_spacetime(old, tmp_path / "old.safetensors")
    with pytest.raises(UserError, match="does not fit the 'small' preset") as e:
        load_spacetime(tmp_path / "old.safetensors")
    assert "\n" not in str(e.value)


def test_over_moving_points_the_smooth_rule_adds_the_smoothed_correction():
    g = torch.Generator().manual_seed(13)
    rules = DecodeRules(band_px=9, crack_px=9, fluid_px=9)  # smooth, not over the border
    model = SpaceTimeModel("small", rules).eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.02, generator=g)
    h, w = 48, 64
    alpha = torch.ones(1, 1, h, w)
    alpha[..., 20:26, 4:10] = 0.0  # a hole on the left
    alpha[..., 36, 30:] = 0.8  # a row the flow pulls apart
    feats = torch.rand(1, 4 + model.feature_channels, h, w, generator=g)
    feats[:, :3] = 0.3 + 0.2 * feats[:, :3]  # dim enough that nothing is clamped
    feats[:, 3:4] = 1.0
    water = torch.zeros(1, 1, h, w)
    water[..., 30:, 30:] = 1.0  # moving points, bottom right
    shift = torch.randn(1, 2, h, w, generator=g)
    shift[:, 0, :, :6] = -20.0  # the left columns' points come from past the photo's edge
    fwd = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    bwd = SplattedFrame(feats.roll(2, -1) * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    with torch.no_grad():
        out = model.decode(fwd, bwd, 0.5)
        base, confidence = CompositingDecoder().fill_batch([fwd], [bwd], [0.5])
        extra = torch.cat([base, confidence, displacement_channels(fwd, bwd, 4.0)], 1)
        correction = _correction(model, fwd, bwd, 0.5, extra)
    band = hole_band(confidence, 9, 9)
    fluid = fluid_band(moving_opacity(fwd, bwd), 9) * (1 - spread(from_outside(fwd, bwd), 9))
    thin = thinness(fwd, bwd, rules)
    smooth = correction + thin * (blur(correction, 2.0) - correction)
    want = base + band * correction + (1 - band) * fluid * smooth
    assert ((want > 0) & (want < 1)).all()  # (not clamped)
    assert torch.allclose(out, want, atol=1e-6)
    assert fluid.max() == 1.0 and thin.max() == 1.0 and band.max() == 1.0
    # The moving points' corrections do reach the frame, and not where nothing is near.
    assert (out - base)[..., 40:, 40:].abs().max() > 1e-3
    assert torch.equal(out[..., :12, 24:], base[..., :12, 24:])


def test_the_decoder_sees_the_displacement_and_files_without_its_inputs_are_refused(tmp_path):
    d = DISPLACEMENT_CHANNELS
    g = torch.Generator().manual_seed(4)
    model = SpaceTimeModel("small").eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    first = model.img_decoder.firstconv.weight
    alpha = torch.rand(1, 1, 32, 48, generator=g)
    feats = torch.rand(1, 4 + model.feature_channels, 32, 48, generator=g) * alpha
    depth = 1 + torch.rand(1, 1, 32, 48, generator=g)
    still = SplattedFrame(feats, alpha, depth, torch.zeros(1, 2, 32, 48))
    moved = SplattedFrame(feats, alpha, depth, 3 * torch.randn(1, 2, 32, 48, generator=g))
    with torch.no_grad():
        assert torch.equal(model.decode(still, None, 0.0),
                           model.decode(SplattedFrame(feats, alpha, depth), None, 0.0))
        assert (model.decode(moved, None, 0.0) - model.decode(still, None, 0.0)).abs().max() > 1e-3
    # Our weights from before the displacement inputs no longer carry over: refused.
    old = SpaceTimeModel("small")
    old.img_decoder.firstconv.weight = torch.nn.Parameter(first[:, :-d].clone())
    save_spacetime(old, tmp_path / "old.safetensors", half=False)
    with pytest.raises(UserError, match="does not fit the 'small' preset.*1 shape mismatch"):
        load_spacetime(tmp_path / "old.safetensors")


@pytest.mark.parametrize("rules", [DecodeRules(), DecodeRules(band_px=15, crack_px=9, fluid_px=0),
                                   DecodeRules(band_px=9, fluid_px=15, fluid_rule="free")])
def test_decoding_a_batch_equals_decoding_each_frame(rules):
    g = torch.Generator().manual_seed(1)
    model = SpaceTimeModel("small", rules).eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    channels = 4 + model.feature_channels

    def frame():
        alpha = torch.rand(1, 1, 36, 50, generator=g)
        alpha[..., 5:9, 5:9] = 0.0  # a hole
        feats = torch.rand(1, channels, 36, 50, generator=g) * alpha
        moving = torch.zeros(1, 1, 36, 50)
        moving[..., 20:, 25:] = 1.0
        return SplattedFrame(feats, alpha, 1 + 3 * torch.rand(1, 1, 36, 50, generator=g),
                             torch.randn(1, 2, 36, 50, generator=g), moving)

    fwds, bwds, times = [frame(), frame(), frame()], [frame(), None, frame()], [0.2, 0.0, 0.7]
    with torch.no_grad():
        batch = model.decode_batch(fwds, bwds, times)
        single = torch.cat([model.decode(f, b, t) for f, b, t in zip(fwds, bwds, times)])
        # The rule inputs made once and handed on: the same frames.
        handed = model.decode_batch(fwds, bwds, times, model.rule_inputs(fwds, bwds, times))
    assert batch.shape == (3, 3, 36, 50)
    assert torch.allclose(batch, single, atol=1e-5)
    assert torch.equal(handed, batch)
    assert (single[0] - single[2]).abs().max() > 1e-3  # the frames do differ
    base = CompositingDecoder().fill_batch(fwds, bwds, times)[0]
    assert (batch - base).abs().max() > 1e-3  # and the correction applies


def test_the_decoders_disparity_is_normalised_over_the_covered_pixels_of_both_frames():
    g = torch.Generator().manual_seed(0)

    def frame(cover):
        alpha = (torch.rand(1, 1, 8, 10, generator=g) < cover).float()
        depth = 1.0 + 9.0 * torch.rand(1, 1, 8, 10, generator=g)
        return SplattedFrame(torch.rand(1, 5, 8, 10, generator=g), alpha, depth)

    f, b = frame(0.5), frame(0.5)
    x0, x1 = SpaceTimeModel._maps(f, b)
    values = torch.cat([(1 / f.depth)[f.alpha > 0], (1 / b.depth)[b.alpha > 0]])
    lo, hi = values.min(), values.max()
    for x, s in ((x0, f), (x1, b)):
        assert torch.equal(x[:, :5], s.features)
        want = ((1 / s.depth - lo) / (hi - lo)).clamp(0, 1) * s.alpha
        assert torch.allclose(x[:, 5:], want, atol=1e-6)
    empty = frame(0.0)  # nothing covered: the channel is zero
    x0, x1 = SpaceTimeModel._maps(empty, None)
    assert torch.equal(x0, x1) and not x0[:, 5:].any() and torch.isfinite(x0).all()


def test_the_render_splats_the_displacement_only_for_a_decoder_that_reads_it():
    from omegaconf import OmegaConf

    from cinemagraph.motion.field import MotionField
    from cinemagraph.pipeline import Components, build_scene
    from cinemagraph.render.camera import named_path
    from cinemagraph.render.pipeline import render_frames
    from cinemagraph.spacetime import LearnedDecoder
    from cinemagraph.train.config import SpaceTimeDataConfig
    from cinemagraph.train.spacetime_samples import SpaceTimeSamples

    data = OmegaConf.structured(SpaceTimeDataConfig(scenes=3, size=[48, 64], frames=8))
    source = SpaceTimeSamples(data).source
    raw = source.scene(1, "anim", None, [3], end=False)
    mask = raw["mask"][None]
    motion = MotionField(raw["motion"][None] * mask, mask.bool())
    scene = build_scene(raw["image"][None], raw["depth"][None], motion, 4, Components())

    class Recording:
        description = "records what it gets"

        def __init__(self, reads):
            self.reads_displacement, self.got = reads, []

        def __call__(self, forward, backward, time):
            self.got += [f.displacement for f in (forward, backward) if f is not None]
            return forward.features[:, :3]

    path = named_path("zoom-in", 4, raw["K"])
    reads, ignores = Recording(True), Recording(False)
    for decoder in (reads, ignores):
        list(render_frames(scene.cloud, path, (48, 64), decoder))
    assert len(reads.got) > 4 and all(d is not None and d.shape == (1, 2, 48, 64) for d in reads.got)
    assert len(ignores.got) == len(reads.got) and all(d is None for d in ignores.got)
    # Ours read it where residual; the official networks do not.
    assert LearnedDecoder(SpaceTimeModel("small"), "").reads_displacement
    assert not LearnedDecoder(SpaceTimeModel("official"), "").reads_displacement
