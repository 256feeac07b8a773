"""Where the residual decoder's correction applies (:mod:`cinemagraph.spacetime.rules`): the
hole band and its cracks, the fluid band over moving points, its rules (free, smooth) and the
photo's border; the rules are kept in the weight file."""

import json

import pytest
import torch
import torch.nn.functional as F

from cinemagraph.render.decode import CompositingDecoder, SplattedFrame
from cinemagraph.spacetime import (DecodeRules, SpaceTimeModel, learned_components,
                                   load_spacetime, save_spacetime)
from cinemagraph.spacetime.rules import (METADATA_KEY, blur, fluid_band, from_outside,
                                         hole_band, pad16, thinness)


def _model(seed: int, **rules):
    """A small model whose correction is not zero (random last layer) under ``rules``
    (band 9 px, cracks 9 px, no fluid band unless given), and the generator to draw on from."""
    g = torch.Generator().manual_seed(seed)
    model = SpaceTimeModel("small", DecodeRules(**{"band_px": 9, "crack_px": 9, "fluid_px": 0,
                                                   **rules})).eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(model.img_decoder.outc.conv.bias, 0.4)
    return model, g


def _as(model, **rules):
    """``model``'s weights under other rules."""
    other = SpaceTimeModel(model.preset, DecodeRules(**{**vars(model.rules), **rules})).eval()
    other.load_state_dict(model.state_dict())
    return other


@torch.no_grad()
def _whole(model, forward, backward, time):
    """The built-in composite of a frame and the frame with the whole correction applied
    (the rules aside), clipped."""
    h, w = forward.alpha.shape[-2:]
    inputs = model.rule_inputs([forward], [backward], [time])
    x0, x1 = (pad16(x) for x in SpaceTimeModel._maps(forward, backward))
    t = time if backward is not None else 0.0
    correction = 2.0 * (model.img_decoder(x0, x1, t, inputs.extra) - 0.5)[..., :h, :w]
    return inputs.base, (inputs.base + correction).clamp(0, 1)


def _kept_in_the_file(tmp_path, model, name="w") -> str:
    """Save ``model``, check that its file loads with its rules (in the ``decode_rules``
    metadata) and renders as it does, and return the file's log description."""
    from safetensors import safe_open

    path = tmp_path / f"{name}.safetensors"
    save_spacetime(model, path, half=False)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert DecodeRules(**json.loads(meta[METADATA_KEY])) == model.rules
    assert DecodeRules.from_metadata(meta, str(path)) == model.rules
    assert load_spacetime(path).rules == model.rules
    return learned_components(path)[1].description.replace(str(path), "")


def test_the_band_confines_the_correction_to_holes_and_is_kept_in_the_file(tmp_path):
    model, g = _model(7)
    alpha = 0.5 + 0.5 * torch.rand(1, 1, 48, 64, generator=g)
    alpha[..., 20:28, 8:16] = 0.0  # a hole
    feats = torch.rand(1, 4 + model.feature_channels, 48, 64, generator=g)
    feats[:, 3:4] = 1.0
    fwd = SplattedFrame(feats * alpha, alpha, 1 + torch.rand(1, 1, 48, 64, generator=g),
                        torch.randn(1, 2, 48, 64, generator=g))
    with torch.no_grad():
        out = model.decode(fwd, None, 0.0)
        _, confidence = CompositingDecoder().fill_batch([fwd], [None], [0.0])
    base, whole = _whole(model, fwd, None, 0.0)
    band = hole_band(confidence, 9)[0, 0]
    assert band[20:28, 8:16].min() == 1.0 and band[:, 32:].max() == 0.0
    # Far from the hole (more than 9 px) the composite stays as it is, exactly; over the hole
    # the correction applies whole, and in between in proportion to the band.
    assert torch.equal(out[..., :, 32:], base.clamp(0, 1)[..., :, 32:])
    assert (whole - base)[..., :, 32:].abs().max() > 1e-3
    assert torch.allclose(out[..., 20:28, 8:16], whole[..., 20:28, 8:16], atol=1e-6)
    inside = (band > 0) & (band < 1) & (whole > 0) & (whole < 1)  # (not clamped)
    assert inside.sum() > 100 and torch.allclose(
        out[inside], (base + band * (whole - base))[inside], atol=1e-5)
    # A wider band reaches farther.
    with torch.no_grad():
        wider = _as(model, band_px=31, crack_px=31).decode(fwd, None, 0.0)
    assert (wider - base)[..., :, 32:40].abs().max() > 1e-3
    # The file says where its correction applies, and renders the same.
    assert "band 9 px, cracks 9 px" in _kept_in_the_file(tmp_path, model)
    with torch.no_grad():
        assert torch.equal(load_spacetime(tmp_path / "w.safetensors").decode(fwd, None, 0.0), out)


def test_cracks_spread_a_narrower_band_than_holes(tmp_path):
    confidence = torch.ones(1, 1, 64, 96)
    confidence[..., 10, 10] = 0.0  # a crack between splats, one pixel
    confidence[..., 20:60, 30] = 0.2  # a crack two pixels wide
    confidence[..., 20:60, 31] = 0.0
    confidence[..., 30:36, 70:76] = 0.0  # a hole
    k = 21
    square = F.avg_pool2d(F.max_pool2d(1 - confidence, k, 1, k // 2), k, 1, k // 2,
                          count_include_pad=False)
    # Without a crack width (or one as wide) the band is the square filters' (done separably).
    assert torch.allclose(hole_band(confidence, k), square, atol=1e-6)
    assert torch.equal(hole_band(confidence, k, k), hole_band(confidence, k))
    band = hole_band(confidence, k, 5)[0, 0]
    # The cracks themselves stay fully in; around them the band ends 5 px out, not 21.
    assert band[10, 10] == 1.0 and band[30, 31] == 1.0 and band[30, 30] >= 0.8
    assert band[10, 13] > 0 and band[10, 16] == 0.0 and band[5, 10] == 0.0
    assert band[30, 34] > 0 and band[30, 37] == 0.0 and band[30, 25] == 0.0
    # Around the hole it spreads the full width from one pixel in from its edge.
    inner = torch.ones_like(confidence)
    inner[..., 31:35, 71:75] = 0.0
    spread = hole_band(inner, k)[0, 0]
    for cols in (slice(50, 66), slice(81, 96)):  # (next to it its crack-wide band may add)
        assert torch.equal(band[:, cols], spread[:, cols])
    assert band[30:36, 70:76].min() == 1.0 and band[33, 62] > 0 and band[33, 83] > 0
    # The model's rules make that band; kept in the file, named in the log line.
    model = SpaceTimeModel("small", DecodeRules(band_px=k, crack_px=5, fluid_px=0))
    assert "band 21 px, cracks 5 px" in _kept_in_the_file(tmp_path, model)
    with pytest.raises(ValueError, match="crack_px 0"):
        DecodeRules(crack_px=0)


def test_the_fluid_band_spreads_the_correction_over_moving_points_only(tmp_path):
    holes, g = _model(8)
    fluid = _as(holes, fluid_px=9, fluid_rule="free", fluid_border=True)
    alpha = 0.5 + 0.5 * torch.rand(1, 1, 48, 64, generator=g)
    alpha[..., 20:28, 4:12] = 0.0  # a hole, on the left
    feats = torch.rand(1, 4 + holes.feature_channels, 48, 64, generator=g)
    feats[:, 3:4] = 1.0
    depth, shift = 1 + torch.rand(1, 1, 48, 64, generator=g), torch.randn(1, 2, 48, 64, generator=g)
    water = torch.zeros(1, 1, 48, 64)
    water[..., 28:48, 40:64] = 1.0  # moving points, bottom right, far from the hole
    frame = lambda moving: SplattedFrame(feats * alpha, alpha, depth, shift, moving)
    still, flowing = frame(torch.zeros_like(water)), frame(water)
    with torch.no_grad():
        # Nothing moves (or the frame says nothing of it): the hole band alone, exactly.
        assert torch.equal(fluid.decode(still, still, 0.5), holes.decode(still, still, 0.5))
        assert torch.equal(fluid.decode(frame(None), None, 0.0), holes.decode(still, None, 0.0))
        out = fluid.decode(flowing, flowing, 0.25)
        # At time 0 nothing has moved yet and the backward cloud does not show: no band.
        assert torch.equal(fluid.decode(flowing, flowing, 0.0), holes.decode(flowing, flowing, 0.0))
        assert torch.equal(fluid.decode(flowing, None, 0.0), holes.decode(flowing, None, 0.0))
        # Either frame's moving points count (the backward cloud's too).
        assert torch.equal(fluid.decode(still, flowing, 0.5), fluid.decode(flowing, still, 0.5))
        assert torch.equal(holes.decode(flowing, None, 0.0), holes.decode(still, None, 0.0))
    base, whole = _whole(fluid, flowing, flowing, 0.25)
    # Over the water the correction applies whole, between the hole and the water (more than
    # 9 px from both) the composite stays as it is.
    assert torch.allclose(out[..., 34:48, 46:64], whole[..., 34:48, 46:64], atol=1e-6)
    assert (whole - base)[..., 34:48, 46:64].abs().max() > 1e-3
    assert torch.equal(out[..., 0:18, 22:30], base.clamp(0, 1)[..., 0:18, 22:30])
    band = fluid_band(water * alpha, 9)[0, 0]
    assert band[28:48, 40:64].min() > 0.5
    assert band[:18, :].max() == 0.0 and band[:, :30].max() == 0.0
    assert torch.equal(fluid_band(water * 0.4, 9), torch.zeros_like(water))  # under half moves
    # Kept in the file and its log line.
    assert "band 9 px, cracks 9 px, fluid 9 px" in _kept_in_the_file(tmp_path, fluid)
    assert "fluid" not in _kept_in_the_file(tmp_path, holes, "holes")


def test_the_fluid_rules_are_free_or_smooth():
    model, g = _model(9, fluid_px=15, fluid_border=True)
    alpha = torch.ones(1, 1, 48, 64)
    alpha[..., 20:28, 4:12] = 0.0  # a hole, on the left
    alpha[..., 40, 32:] = 0.75  # a row the flow pulls apart
    feats = torch.rand(1, 4 + model.feature_channels, 48, 64, generator=g)
    feats[:, 3:4] = 1.0
    water = torch.zeros(1, 1, 48, 64)
    water[..., 28:48, 32:64] = 1.0  # moving points, bottom right
    frame = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, 48, 64),
                          torch.randn(1, 2, 48, 64, generator=g), water)
    free, smooth = (_as(model, fluid_rule=rule) for rule in ("free", "smooth"))
    a = free.rule_inputs([frame], [frame], [0.5])
    b = smooth.rule_inputs([frame], [frame], [0.5])
    holes = hole_band(b.confidence, 9, 9)
    moving = fluid_band(water, 15)
    # Free: the fluid band joins the hole band; smooth: kept apart, with the thin coverage.
    assert a.fluid is None and a.thin is None
    assert torch.equal(a.band, torch.maximum(holes, moving))
    assert torch.equal(b.band, holes) and torch.equal(b.fluid, moving)
    assert torch.equal(b.thin, thinness(frame, frame, smooth.rules))
    assert b.thin[..., 39:42, 32:].min() == 1.0 and b.thin[..., :30, 20:].max() == 0.0
    assert torch.equal(a.base, b.base) and torch.equal(a.extra, b.extra)
    # Without moving points the rules agree.
    still = frame._replace(moving=None)
    with torch.no_grad():
        assert torch.equal(free.decode(still, still, 0.5), smooth.decode(still, still, 0.5))
        assert (free.decode(frame, frame, 0.5) - smooth.decode(frame, frame, 0.5)).abs().max() > 1e-3
    # The retired rules are refused, named.
    for rule in ("between", "detail", "inside"):
        with pytest.raises(ValueError, match=f"fluid_rule '{rule}': one of free, smooth"):
            DecodeRules(fluid_rule=rule)


def test_without_fluid_border_the_fluid_band_leaves_the_photos_border_to_the_hole_band(tmp_path):
    holes, g = _model(10)
    over = _as(holes, fluid_px=191, fluid_rule="free", fluid_border=True)
    inside = _as(over, fluid_border=False)
    h, w = 48, 96
    alpha = torch.ones(1, 1, h, w)
    alpha[..., 20:26, 40:46] = 0.0  # a hole in the middle
    feats = torch.rand(1, 4 + over.feature_channels, h, w, generator=g)
    feats[:, 3:4] = 1.0
    # The camera has moved right by 30 px: the points of the left 30 columns come from the
    # border left of the photo; the water moves on the right half.
    shift = torch.zeros(1, 2, h, w)
    shift[:, 0] = 30.0
    shift[..., 40:46] = 0.0  # nothing covers the hole: no displacement there
    water = torch.zeros(1, 1, h, w)
    water[..., 48:] = 1.0
    frame = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    outside = from_outside(frame)[0, 0]
    assert outside[:, :30].min() == 1.0 and outside[:, 30:].max() == 0.0
    # The backward frame's border counts too.
    still = SplattedFrame(frame.features, alpha, frame.depth, torch.zeros_like(shift), water)
    assert torch.equal(from_outside(still, frame), from_outside(frame))
    assert from_outside(still).max() == 0.0
    with torch.no_grad():
        base = CompositingDecoder()(frame, frame, 0.5)
        wide, kept, alone = (m.decode(frame, frame, 0.5) for m in (over, inside, holes))
    # With the border: the fluid band covers the whole frame, the border too.
    assert (wide - base)[..., :, :12].abs().amin(dim=(-2, -1)).max() > 1e-3
    # Without: over the border, and fading in beside it, the hole band alone.
    assert torch.equal(kept[..., :, :12], alone[..., :, :12])
    # Farther from the border than the fade reaches (twice its half-width), as with it;
    # nearer, between.
    fade = inside.rules.border_fade_px
    reach = 30 + 2 * (fade // 2) + 1
    assert torch.allclose(kept[..., :, reach:], wide[..., :, reach:])
    assert not torch.allclose(kept[..., :, 30:reach], wide[..., :, 30:reach])
    # A wider fade reaches farther in.
    with torch.no_grad():
        faded = _as(inside, border_fade_px=21).decode(frame, frame, 0.5)
    assert not torch.allclose(faded[..., :, reach:reach + 8], wide[..., :, reach:reach + 8])
    # Kept in the file and its log line.
    assert "fluid 191 px (not over the photo's border)" in _kept_in_the_file(tmp_path, inside)
    assert "border" not in _kept_in_the_file(tmp_path, over, "over")


def test_the_smooth_rule_blurs_the_correction_only_where_a_cloud_covers_thinly(tmp_path):
    free, g = _model(11, fluid_px=191, fluid_rule="free", fluid_border=True)
    smooth = _as(free, fluid_rule="smooth")
    sigma = smooth.rules.smooth_sigma
    h, w = 48, 64
    feats = torch.rand(1, 4 + free.feature_channels, h, w, generator=g)
    feats[:, :3] = 0.3 + 0.2 * feats[:, :3]  # dim enough that the correction is not clamped
    feats[:, 3:4] = 1.0
    water = torch.ones(1, 1, h, w)  # all of it moves, and nothing is a hole
    shift, depth = torch.randn(1, 2, h, w, generator=g), torch.ones(1, 1, h, w)
    full = torch.ones(1, 1, h, w)
    thin = full.clone()
    thin[..., 24, :] = 0.75  # a row whose points the flow pulls apart
    splat = lambda a: SplattedFrame(feats * a, a, depth, shift, water)
    other = SplattedFrame(feats.roll(5, -1), full, depth, shift, water)
    t = thinness(splat(thin), other)[0, 0]
    assert t[23:26].min() == 1.0 and t[:22].max() == 0.0 and t[27:].max() == 0.0
    assert torch.equal(thinness(other, splat(thin)), thinness(splat(thin), other))
    # Coverage above thin_full is not thin; thin_span sets how fast it becomes so.
    assert thinness(splat(full * 0.98), other).max() == 0.0
    half = thinness(splat(full * 0.87), other, DecodeRules(thin_full=0.97, thin_span=0.2))
    assert torch.allclose(half, torch.full_like(half, 0.5))
    with torch.no_grad():
        # Covered fully everywhere: the free rule's frame.
        assert torch.allclose(smooth.decode(splat(full), other, 0.5),
                              free.decode(splat(full), other, 0.5), atol=1e-6)
        loose, kept = free.decode(splat(thin), other, 0.5), smooth.decode(splat(thin), other, 0.5)
        base, confidence = CompositingDecoder().fill_batch([splat(thin)], [other], [0.5])
    # A thinly covered row is no hole: the hole band is empty, the fluid band everywhere.
    assert hole_band(confidence, 9, 9).max() == 0.0
    # Away from the thin row (past the blur's reach), as the free rule; on it and the rows
    # beside it, the blurred correction.
    reach = 2 * int(2 * sigma) + 3
    assert torch.allclose(kept[..., :24 - reach, :], loose[..., :24 - reach, :], atol=1e-6)
    assert torch.allclose(kept[..., 25 + reach:, :], loose[..., 25 + reach:, :], atol=1e-6)
    assert (kept - loose)[..., 23:26, :].abs().max() > 1e-3
    assert ((loose > 0) & (loose < 1)).all()  # nothing clamped: the correction is loose - base
    smoothed = base + blur(loose - base, sigma)
    assert torch.allclose(kept[..., 23:26, :], smoothed[..., 23:26, :], atol=1e-6)
    # A wider blur smooths more.
    with torch.no_grad():
        wider = _as(smooth, smooth_sigma=4.0).decode(splat(thin), other, 0.5)
    assert (wider - kept)[..., 23:26, :].abs().max() > 1e-4
    assert "fluid 191 px (smoothed where a cloud is thin)" in _kept_in_the_file(tmp_path, smooth)


def test_the_rules_are_checked_and_read_back_from_a_files_metadata():
    rules = DecodeRules(band_px=63, crack_px=7, fluid_px=31, fluid_rule="free",
                        fluid_border=True, border_fade_px=5, smooth_sigma=1.5, thin_full=0.9,
                        thin_span=0.1, displacement_scale=2.0)
    meta = rules.to_metadata()
    assert list(meta) == [METADATA_KEY]
    assert DecodeRules.from_metadata(meta, "w") == rules
    assert DecodeRules.from_metadata(DecodeRules().to_metadata(), "w") == DecodeRules()
    # The shipped rules are the defaults.
    assert DecodeRules() == DecodeRules(band_px=191, crack_px=9, fluid_px=191, fluid_rule="smooth",
                                        fluid_border=False, border_fade_px=9, smooth_sigma=2.0,
                                        thin_full=0.97, thin_span=0.2, displacement_scale=4.0)
    values = json.loads(meta[METADATA_KEY])
    for bad, named in [({}, "holds no decode rules"),
                       ({METADATA_KEY: "{"}, "malformed"),
                       ({METADATA_KEY: "[1]"}, "malformed"),
                       ({METADATA_KEY: json.dumps({**values, "clamp_px": 3})},
                        "'clamp_px' is not one this version can apply"),
                       ({METADATA_KEY: json.dumps({k: v for k, v in values.items()
                                                   if k != "crack_px"})},
                        "'crack_px' is missing"),
                       ({METADATA_KEY: json.dumps({**values, "fluid_rule": "between"})},
                        "decode rule fluid_rule 'between'")]:
        with pytest.raises(ValueError, match=named):
            DecodeRules.from_metadata(bad, "w.safetensors")
    for kw, named in [(dict(band_px=0), "band_px 0"), (dict(band_px=9.5), "band_px 9.5"),
                      (dict(crack_px=True), "crack_px True"), (dict(fluid_px=-1), "fluid_px -1"),
                      (dict(fluid_border="no"), "fluid_border 'no'"),
                      (dict(smooth_sigma=0), "smooth_sigma 0"),
                      (dict(displacement_scale=-1.0), "displacement_scale -1.0"),
                      (dict(thin_full="high"), "thin_full 'high'")]:
        with pytest.raises(ValueError, match=named):
            DecodeRules(**kw)
    with pytest.raises(Exception):  # frozen
        DecodeRules().band_px = 3
