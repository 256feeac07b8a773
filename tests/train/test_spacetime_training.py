"""Training of the feature network and decoder: every experiment for two CPU steps, the
weights format, and two data-parallel processes (gloo) ending with identical weights."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.models.spacetime import SpaceTimeModel, load_spacetime
from cinemagraph.train.spacetime import SpaceTimeTrainer
from cinemagraph.train.spacetime_samples import SpaceTimeSamples

from .configs import config, experiments

SPACETIME = experiments("spacetime_")
SMALL = ["spacetime.data.scenes=4", "spacetime.data.size=[64,96]", "spacetime.data.frames=6",
         "trainer.batch_size=1", "trainer.device=cpu", "trainer.log_every=1"]


def _alone(experiment: str) -> list[str]:
    """Overrides that let a stage of a chain (the shipped weights' experiments) run without
    the earlier stage's weights or the photograph folder it names."""
    from omegaconf import OmegaConf

    cfg = config([f"experiment={experiment}"])
    extra = ["spacetime.model.init=null"] if cfg.spacetime.model.init else []
    if OmegaConf.is_missing(cfg.spacetime.data, "photos"):
        extra.append("spacetime.data.photos=null")
    if cfg.spacetime.model.correction == "band" and not cfg.trainer.replay:
        # From scratch in band mode, on these tiny scenes, the first steps change the decoder
        # alone; the feature network's weights move by step 6.
        extra.append("trainer.steps=6")
    return extra


@pytest.mark.parametrize("experiment", SPACETIME)
def test_every_spacetime_experiment_runs_two_steps(experiment, tmp_path):
    cfg = config([f"experiment={experiment}", "trainer.steps=2"] + SMALL + _alone(experiment))
    assert cfg.trainer.steps <= 6
    trainer = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("feature_net.") for k in changed)  # gradients reach through
    assert any(k.startswith("img_decoder.") for k in changed)  # the splatter to both nets
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    steps = cfg.trainer.steps
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    assert all(0 <= float(r["data_seconds"]) <= float(r["seconds"]) for r in rows)
    weights = tmp_path / "checkpoints" / f"step_{steps:07d}.safetensors"
    loaded = load_spacetime(weights)
    assert loaded.preset == cfg.spacetime.model.preset
    saved = (trainer.model if trainer.ema is None else trainer.ema).state_dict()  # the EMA's
    for k, v in loaded.state_dict().items():
        want = saved[k].cpu()
        if cfg.spacetime.model.save_fp16 and want.is_floating_point():
            want = want.half().to(want.dtype)
        assert torch.equal(v, want), k


def test_the_sweep_example_composes():
    for model in ("small", "base", "official"):
        cfg = config(["experiment=spacetime_small", f"model={model}", "train.lr=1e-4"])
        assert cfg.spacetime.model.preset == model and cfg.train.lr == 1e-4
        assert sum(p.numel() for p in SpaceTimeModel(model).parameters()) > 0


def test_two_processes_end_with_identical_weights(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_port=29533", str(worker), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The ranks trained on different samples, so the equality is the gradients' all-reduce.
    ta, tb = (torch.load(tmp_path / f"target{r}.pt", weights_only=True) for r in (0, 1))
    assert not torch.equal(ta, tb)
    assert (tmp_path / "checkpoints" / "step_0000003.pt").exists()
    import json

    replicas = json.loads((tmp_path / "replicas.json").read_text())
    assert replicas["identical"] and replicas["world_size"] == 2 and replicas["step"] == 3


def test_an_untrained_residual_preset_renders_as_the_built_in_decoder():
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame

    g = torch.Generator().manual_seed(0)
    model = SpaceTimeModel("small").eval()
    channels = 4 + model.feature_channels

    def frame():
        alpha = torch.rand(1, 1, 40, 56, generator=g)
        feats = torch.rand(1, channels, 40, 56, generator=g) * alpha
        return SplattedFrame(feats, alpha, 1 + torch.rand(1, 1, 40, 56, generator=g))

    fwd, bwd = frame(), frame()
    with torch.no_grad():
        assert torch.allclose(model.decode(fwd, bwd, 0.3), CompositingDecoder()(fwd, bwd, 0.3),
                              atol=1e-6)
    assert not SpaceTimeModel("official").residual
    # The built-in decoder's batch (the residual's base in training) fills each frame alone.
    frames = [(frame(), frame(), 0.3), (frame(), None, 0.0), (frame(), frame(), 0.8)]
    batch = CompositingDecoder().fill_batch(*map(list, zip(*frames)))[0]
    single = torch.cat([CompositingDecoder()(f, b, t) for f, b, t in frames])
    assert torch.allclose(batch, single, atol=1e-6)


def test_the_residual_decoder_sees_the_composite_it_corrects(tmp_path):
    import torch.nn.functional as F

    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import (COMPOSITE_CHANNELS, DISPLACEMENT_CHANNELS,
                                              save_spacetime)

    c, d = COMPOSITE_CHANNELS, DISPLACEMENT_CHANNELS
    g = torch.Generator().manual_seed(3)
    model = SpaceTimeModel("small").eval()
    first = model.img_decoder.firstconv.weight
    assert first.shape[1] == 4 + model.feature_channels + 1 + c + d
    assert SpaceTimeModel("official").img_decoder.firstconv.weight.shape[1] == 37
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    channels = 4 + model.feature_channels
    alpha = torch.rand(1, 1, 36, 50, generator=g)
    alpha[..., :10, :] = 0.0  # a band no point covers: filled, confidence 0
    fwd = SplattedFrame(torch.rand(1, channels, 36, 50, generator=g) * alpha, alpha,
                        1 + torch.rand(1, 1, 36, 50, generator=g))
    with torch.no_grad():
        before = model.decode(fwd, None, 0.0)
        first[:, -(c + d):-d] += 0.1 * torch.randn(first.shape[0], c, 7, 7, generator=g)
        after = model.decode(fwd, None, 0.0)
        base, confidence = CompositingDecoder().fill_batch([fwd], [None], [0.0])
        x0, x1 = (F.pad(x, (0, 14, 0, 12), mode="replicate") for x in SpaceTimeModel._maps(fwd, None))
        extra = torch.cat([base, confidence, torch.zeros(1, d, 36, 50)], 1)  # no displacement
        extra = F.pad(extra, (0, 14, 0, 12), mode="replicate")
        y = model.img_decoder(x0, x1, 0.0, extra)[..., :36, :50]
    assert (after - before).abs().max() > 1e-3  # the composite's channels reach the output
    from kornia.filters import gaussian_blur2d

    gate = torch.sigmoid(torch.tensor(2.0))  # an untrained gate: uniform
    r = gate * 2 * (y - 0.5)  # whole in the band, its detail (sigma 4 px) on covered pixels
    detail = r - confidence * gaussian_blur2d(r, (17, 17), (4.0, 4.0), border_type="replicate")
    assert torch.allclose(after, (base + detail).clamp(0, 1), atol=1e-6)
    assert confidence[..., :10, :].max() == 0 and confidence.max() == 1
    # Weights of the layout before the composite input are refused in one line.
    old = SpaceTimeModel("small")
    old.img_decoder.firstconv.weight = torch.nn.Parameter(first[:, :-(c + d)].clone())
    save_spacetime(old, tmp_path / "old.safetensors")
    with pytest.raises(UserError, match="does not fit the 'small' preset"):
        load_spacetime(tmp_path / "old.safetensors")


def test_the_decoder_sees_the_displacement_and_older_weights_carry_over_blind_to_it(tmp_path):
    from cinemagraph.models.decoder import SplattedFrame
    from cinemagraph.models.spacetime import DISPLACEMENT_CHANNELS, save_spacetime

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
    # Our weights from before the displacement inputs load with zero weights on them.
    old = SpaceTimeModel("small")
    old.load_state_dict(model.state_dict())
    old.img_decoder.firstconv.weight = torch.nn.Parameter(first[:, :-d].clone())
    save_spacetime(old, tmp_path / "old.safetensors", half=False)
    carried = load_spacetime(tmp_path / "old.safetensors")
    assert torch.equal(carried.img_decoder.firstconv.weight[:, :-d], first[:, :-d])
    assert not carried.img_decoder.firstconv.weight[:, -d:].any()
    with torch.no_grad():
        assert torch.equal(carried.decode(moved, None, 0.0), carried.decode(still, None, 0.0))


def test_on_covered_pixels_only_the_corrections_detail_applies():
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame

    g = torch.Generator().manual_seed(6)
    model = SpaceTimeModel("small").eval()
    torch.nn.init.constant_(model.img_decoder.outc.conv.bias, 0.4)  # y = sigmoid(0.4) everywhere
    alpha = 0.5 + 0.5 * torch.rand(1, 1, 40, 64, generator=g)
    alpha[..., 12:20, 20:36] = 0.0  # a hole
    feats = torch.rand(1, 4 + model.feature_channels, 40, 64, generator=g)
    feats[:, 3:4] = 1.0  # the splatted ones: coverage
    fwd = SplattedFrame(feats * alpha, alpha, 1 + torch.rand(1, 1, 40, 64, generator=g))
    with torch.no_grad():
        out = model.decode(fwd, None, 0.0)
        base, confidence = CompositingDecoder().fill_batch([fwd], [None], [0.0])
    r = torch.sigmoid(torch.tensor(2.0)) * 2 * (torch.sigmoid(torch.tensor(0.4)) - 0.5)
    covered, hole = confidence[0, 0] == 1, confidence[0, 0] == 0
    assert covered.sum() > 1000 and hole.sum() == 8 * 16
    # A correction that is the same everywhere is all low frequency: covered pixels keep the
    # composite's colour, the hole gets it whole.
    assert (out - base)[..., covered].abs().max() < 1e-5
    assert torch.allclose((out - base)[..., hole], r.expand(3, 128), atol=1e-5)
    ungated = SpaceTimeModel("small", correction="everywhere").eval()
    ungated.load_state_dict({k: v for k, v in model.state_dict().items()
                             if not k.startswith("gate.")})
    with torch.no_grad():  # our weights from before the gate: applied everywhere, as they were
        assert torch.allclose(ungated.decode(fwd, None, 0.0), (base + 2 * (torch.sigmoid(
            torch.tensor(0.4)) - 0.5)).clamp(0, 1), atol=1e-5)


def test_the_band_confines_the_correction_to_holes_and_is_kept_in_the_file(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import hole_band, save_spacetime

    g = torch.Generator().manual_seed(7)
    model = SpaceTimeModel("small", correction="band", band_px=9).eval()
    assert model.gate is None
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(model.img_decoder.outc.conv.bias, 0.4)
    alpha = 0.5 + 0.5 * torch.rand(1, 1, 48, 64, generator=g)
    alpha[..., 20:28, 8:16] = 0.0  # a hole
    feats = torch.rand(1, 4 + model.feature_channels, 48, 64, generator=g)
    feats[:, 3:4] = 1.0
    fwd = SplattedFrame(feats * alpha, alpha, 1 + torch.rand(1, 1, 48, 64, generator=g),
                        torch.randn(1, 2, 48, 64, generator=g))
    with torch.no_grad():
        out = model.decode(fwd, None, 0.0)
        base, confidence = CompositingDecoder().fill_batch([fwd], [None], [0.0])
        everywhere = SpaceTimeModel("small", correction="everywhere").eval()
        everywhere.load_state_dict(model.state_dict())
        whole = everywhere.decode(fwd, None, 0.0)
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
    # The file says where its correction applies; training switches it where the config says.
    save_spacetime(model, tmp_path / "band.safetensors", half=False)
    loaded = load_spacetime(tmp_path / "band.safetensors")
    assert (loaded.correction, loaded.band_px) == ("band", 9)
    from cinemagraph.models.spacetime import learned_components

    assert "correction band 9 px" in learned_components(tmp_path / "band.safetensors")[1].description
    with torch.no_grad():
        assert torch.equal(loaded.decode(fwd, None, 0.0), out)
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'band.safetensors'}"]
    gated = SpaceTimeTrainer(config(start + SMALL), tmp_path / "gated", torch.device("cpu"))
    assert gated.model.correction == "gate" and gated.model.gate is not None
    banded = SpaceTimeTrainer(config(start + ["spacetime.model.correction=band",
                                              "spacetime.model.band_px=15"] + SMALL),
                              tmp_path / "banded", torch.device("cpu"))
    assert (banded.model.correction, banded.model.band_px, banded.model.gate) == ("band", 15, None)
    with pytest.raises(UserError, match="spacetime.model.correction"):
        SpaceTimeTrainer(config(start + ["spacetime.model.correction=bnad"] + SMALL),
                         tmp_path / "typo", torch.device("cpu"))
    # An output ensemble is not a start to train on (its members are).
    from cinemagraph.models.spacetime import SpaceTimeEnsemble, save_ensemble

    pair = SpaceTimeEnsemble([load_spacetime(tmp_path / "band.safetensors")] * 2, [1, 1])
    save_ensemble(pair, tmp_path / "pair.safetensors")
    with pytest.raises(UserError, match="is an output ensemble"):
        SpaceTimeTrainer(config(["experiment=spacetime_small",
                                 f"spacetime.model.init={tmp_path / 'pair.safetensors'}"] + SMALL),
                         tmp_path / "pair", torch.device("cpu"))


def test_cracks_spread_a_narrower_band_than_holes(tmp_path):
    import torch.nn.functional as F

    from cinemagraph.models.spacetime import hole_band, save_spacetime

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
    # Kept in the file, named in the log line, set from the config.
    model = SpaceTimeModel("small", correction="band", band_px=k, crack_px=5)
    save_spacetime(model, tmp_path / "w.safetensors", half=False)
    loaded = load_spacetime(tmp_path / "w.safetensors")
    assert (loaded.correction, loaded.band_px, loaded.crack_px) == ("band", k, 5)
    from cinemagraph.models.spacetime import learned_components

    assert "band 21 px, cracks 5 px" in learned_components(tmp_path / "w.safetensors")[1].description
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'w.safetensors'}"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.correction=band",
                                               "spacetime.model.band_px=31"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert (trainer.model.band_px, trainer.model.crack_px) == (31, None)
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.correction=band",
                                               "spacetime.model.crack_px=7"] + SMALL),
                               tmp_path / "run2", torch.device("cpu"))
    assert (trainer.model.band_px, trainer.model.crack_px) == (31, 7)
    with pytest.raises(UserError, match="crack band width 0 px"):
        SpaceTimeTrainer(config(start + ["spacetime.model.correction=band",
                                         "spacetime.model.crack_px=0"] + SMALL),
                         tmp_path / "run3", torch.device("cpu"))


def test_the_fluid_band_spreads_the_correction_over_moving_points_only(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import fluid_band, learned_components, save_spacetime

    g = torch.Generator().manual_seed(8)
    holes = SpaceTimeModel("small", correction="band", band_px=9).eval()
    torch.nn.init.normal_(holes.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(holes.img_decoder.outc.conv.bias, 0.4)
    fluid = SpaceTimeModel("small", correction="band", band_px=9, fluid_px=9).eval()
    fluid.load_state_dict(holes.state_dict())
    everywhere = SpaceTimeModel("small", correction="everywhere").eval()
    everywhere.load_state_dict(holes.state_dict())
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
        base, _ = CompositingDecoder().fill_batch([still], [still], [0.25])
        whole = everywhere.decode(still, still, 0.25)
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
    # Over the water the correction applies whole, between the hole and the water (more than
    # 9 px from both) the composite stays as it is.
    assert torch.allclose(out[..., 34:48, 46:64], whole[..., 34:48, 46:64], atol=1e-6)
    assert (whole - base)[..., 34:48, 46:64].abs().max() > 1e-3
    assert torch.equal(out[..., 0:18, 22:30], base.clamp(0, 1)[..., 0:18, 22:30])
    band = fluid_band(water * alpha, 9)[0, 0]
    assert band[28:48, 40:64].min() > 0.5
    assert band[:18, :].max() == 0.0 and band[:, :30].max() == 0.0
    assert torch.equal(fluid_band(water * 0.4, 9), torch.zeros_like(water))  # under half moves
    # Kept in the file and its log line; files from before it have none; set from the config.
    save_spacetime(fluid, tmp_path / "fluid.safetensors", half=False)
    save_spacetime(holes, tmp_path / "holes.safetensors", half=False)
    assert load_spacetime(tmp_path / "fluid.safetensors").fluid_px == 9
    assert load_spacetime(tmp_path / "holes.safetensors").fluid_px == 0
    described = learned_components(tmp_path / "fluid.safetensors")[1].description
    assert "band 9 px, fluid 9 px" in described
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'holes.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.fluid_px=31"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert (trainer.model.band_px, trainer.model.fluid_px) == (9, 31)
    with pytest.raises(UserError, match="fluid band width -1 px"):
        SpaceTimeTrainer(config(start + ["spacetime.model.fluid_px=-1"] + SMALL),
                         tmp_path / "run2", torch.device("cpu"))


def _random_band_pair(seed: int, fluid_px: int, **other):
    """A small ``band`` model whose correction is not zero (random last layer), the same
    weights with ``other`` settings, and the generator that made them (to draw on from)."""
    g = torch.Generator().manual_seed(seed)
    first = SpaceTimeModel("small", correction="band", band_px=9, fluid_px=fluid_px).eval()
    torch.nn.init.normal_(first.img_decoder.outc.conv.weight, std=0.05, generator=g)
    torch.nn.init.constant_(first.img_decoder.outc.conv.bias, 0.4)
    second = SpaceTimeModel("small", correction="band", band_px=9, fluid_px=fluid_px,
                            **other).eval()
    second.load_state_dict(first.state_dict())
    return first, second, g


def test_the_fluid_rules_limit_what_the_correction_does_away_from_holes(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import learned_components, save_spacetime

    free, between, g = _random_band_pair(9, 63, fluid_rule="between")
    alpha = torch.ones(1, 1, 48, 64)
    alpha[..., 20:28, 4:12] = 0.0  # a hole, on the left
    depth, shift = torch.ones(1, 1, 48, 64), torch.randn(1, 2, 48, 64, generator=g)
    water = torch.zeros(1, 1, 48, 64)
    water[..., 28:48, 32:64] = 1.0  # moving points, bottom right
    n = 4 + free.feature_channels
    colours = [torch.rand(1, n, 48, 64, generator=g) for _ in range(2)]
    for c in colours:
        c[:, 3:4] = 1.0
    colours[1][..., :28, :] = colours[0][..., :28, :]  # the two clouds differ over the water only
    colours[1][..., :, :32] = colours[0][..., :, :32]
    fwd, bwd = (SplattedFrame(c * alpha, alpha, depth, shift, water) for c in colours)
    with torch.no_grad():
        base = CompositingDecoder()(fwd, bwd, 0.5)
        loose, kept = free.decode(fwd, bwd, 0.5), between.decode(fwd, bwd, 0.5)
    lo = torch.minimum(colours[0][:, :3], colours[1][:, :3])
    hi = torch.maximum(colours[0][:, :3], colours[1][:, :3])
    far = (..., slice(0, 48), slice(24, 64))  # more than 9 px from the hole
    # Where the clouds agree, far from holes: the composite, though the fluid band covers it.
    assert (loose - base)[..., 0:26, 24:64].abs().max() > 1e-2
    assert torch.equal(kept[..., 0:26, 24:64], base[..., 0:26, 24:64])
    # Over the water: changed, but within the two clouds' colours; the free rule leaves them.
    water_px = (..., slice(28, 48), slice(32, 64))
    assert (kept - base)[water_px].abs().max() > 1e-2
    assert (kept[far] >= lo[far] - 1e-6).all() and (kept[far] <= hi[far] + 1e-6).all()
    assert ((loose[far] < lo[far] - 1e-3) | (loose[far] > hi[far] + 1e-3)).any()
    # In the hole band the correction applies whole, as the free rule applies it.
    assert torch.allclose(kept[..., 20:28, 4:12], loose[..., 20:28, 4:12])
    # Detail only: no change of a region's mean colour away from holes.
    detail = SpaceTimeModel("small", correction="band", band_px=9, fluid_px=63,
                            fluid_rule="detail").eval()
    detail.load_state_dict(free.state_dict())
    with torch.no_grad():
        sharp = detail.decode(fwd, bwd, 0.5)
    assert (sharp - base)[..., 4:44, 28:60].abs().max() > 1e-3
    shift = (loose - base)[..., 4:44, 28:60].mean().abs()
    assert (sharp - base)[..., 4:44, 28:60].mean().abs() < 0.1 * shift
    assert torch.allclose(sharp[..., 20:28, 4:12], loose[..., 20:28, 4:12])
    # Kept in the file and its log line; set from the config.
    save_spacetime(between, tmp_path / "between.safetensors", half=False)
    assert load_spacetime(tmp_path / "between.safetensors").fluid_rule == "between"
    described = learned_components(tmp_path / "between.safetensors")[1].description
    assert "fluid 63 px (between the clouds)" in described
    save_spacetime(detail, tmp_path / "detail.safetensors", half=False)
    described = learned_components(tmp_path / "detail.safetensors")[1].description
    assert "fluid 63 px (detail only)" in described
    save_spacetime(free, tmp_path / "free.safetensors", half=False)
    assert load_spacetime(tmp_path / "free.safetensors").fluid_rule == "free"
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'free.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9",
             "spacetime.model.fluid_px=63"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.fluid_rule=between"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert trainer.model.fluid_rule == "between"
    with pytest.raises(UserError, match="unknown fluid rule 'inside'"):
        SpaceTimeTrainer(config(start + ["spacetime.model.fluid_rule=inside"] + SMALL),
                         tmp_path / "run2", torch.device("cpu"))


def test_without_fluid_border_the_fluid_band_leaves_the_photos_border_to_the_hole_band(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import BORDER_FADE_PX, from_outside

    over, inside, g = _random_band_pair(10, 191, fluid_border=False)
    holes = SpaceTimeModel("small", correction="band", band_px=9).eval()
    holes.load_state_dict(over.state_dict())
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
    reach = 30 + 2 * (BORDER_FADE_PX // 2) + 1
    assert torch.allclose(kept[..., :, reach:], wide[..., :, reach:])
    assert not torch.allclose(kept[..., :, 30:reach], wide[..., :, 30:reach])
    # Kept in the file and its log line; files without it cover the border; the config.
    described = _kept_in_the_file(tmp_path, inside, over, "fluid_border")
    assert "fluid 191 px (not over the photo's border)" in described
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'off.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9",
             "spacetime.model.fluid_px=191"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.fluid_border=false"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert trainer.model.fluid_border is False


def test_the_smooth_rule_blurs_the_correction_only_where_a_cloud_covers_thinly(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import (SMOOTH_SIGMA, _blur, learned_components,
                                              save_spacetime, thinness)

    free, smooth, g = _random_band_pair(11, 191, fluid_rule="smooth")
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
    with torch.no_grad():
        # Covered fully everywhere: the free rule's frame, exactly.
        assert torch.equal(smooth.decode(splat(full), other, 0.5),
                           free.decode(splat(full), other, 0.5))
        base = CompositingDecoder()(splat(thin), other, 0.5)
        loose, kept = free.decode(splat(thin), other, 0.5), smooth.decode(splat(thin), other, 0.5)
    # Away from the thin row (past the blur's reach), as the free rule; on it and the rows
    # beside it, the blurred correction.
    reach = 2 * int(2 * SMOOTH_SIGMA) + 3
    assert torch.equal(kept[..., :24 - reach, :], loose[..., :24 - reach, :])
    assert torch.equal(kept[..., 25 + reach:, :], loose[..., 25 + reach:, :])
    assert (kept - loose)[..., 23:26, :].abs().max() > 1e-3
    assert ((loose > 0) & (loose < 1)).all()  # nothing clamped: the correction is loose - base
    smoothed = base + _blur(loose - base, SMOOTH_SIGMA)
    assert torch.allclose(kept[..., 23:26, :], smoothed[..., 23:26, :], atol=1e-6)
    save_spacetime(smooth, tmp_path / "smooth.safetensors", half=False)
    assert load_spacetime(tmp_path / "smooth.safetensors").fluid_rule == "smooth"
    described = learned_components(tmp_path / "smooth.safetensors")[1].description
    assert "fluid 191 px (smoothed where a cloud is thin)" in described


def test_moved_detail_sharpens_where_points_moved_outside_the_bands_and_nowhere_else(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import MOVED_DETAIL_PX, MOVED_DETAIL_SIGMA, _blur

    plain, sharp, g = _random_band_pair(12, 9, fluid_rule="smooth", fluid_border=False,
                                        moved_detail=True)
    h, w = 48, 96
    alpha = torch.ones(1, 1, h, w)
    alpha[..., 20:26, 4:10] = 0.0  # a hole on the left
    feats = torch.rand(1, 4 + plain.feature_channels, h, w, generator=g)
    feats[:, :3] = 0.3 + 0.2 * feats[:, :3]  # dim enough that nothing is clamped
    feats[:, 3:4] = 1.0
    water = torch.zeros(1, 1, h, w)
    water[..., 40:, 40:50] = 1.0  # a little moving water at the bottom
    shift = torch.zeros(1, 2, h, w)
    shift[:, 1, :, 60:] = 2.0 * MOVED_DETAIL_PX  # the camera moved the right part's points
    shift[:, 1, :, 55:60] = 0.5 * MOVED_DETAIL_PX  # and half as far beside it
    frame = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    still = frame._replace(displacement=torch.zeros_like(shift))
    with torch.no_grad():
        base = CompositingDecoder()(frame, frame, 0.5)
        before, after = plain.decode(frame, frame, 0.5), sharp.decode(frame, frame, 0.5)
        # Nothing moved (frame 0 from the source camera): as without it, exactly.
        assert torch.equal(sharp.decode(still, still, 0.5), plain.decode(still, still, 0.5))
    assert ((before > 0) & (before < 1)).all() and ((after > 0) & (after < 1)).all()
    # Where the points did not move, and in the hole and fluid bands: unchanged.
    assert torch.equal(after[..., :, 20:50], before[..., :, 20:50])
    # Where they moved, away from the bands: the correction's detail, in full from
    # MOVED_DETAIL_PX on, half at half of it (the decoder's correction from the bands' pixels).
    changed = after - before
    full = (..., slice(0, 30), slice(62, 94))
    assert changed[full].abs().max() > 1e-3
    correction = 2.0 * (sharp.img_decoder(*sharp._maps(frame, frame), 0.5, _extra(sharp, frame))
                        - 0.5)[..., :h, :w]
    detail = correction - _blur(correction, MOVED_DETAIL_SIGMA)
    assert torch.allclose(changed[full], detail[full], atol=1e-5)
    half = (..., slice(0, 30), slice(56, 59))
    assert torch.allclose(changed[half], 0.5 * detail[half], atol=1e-5)
    # Detail only: no shift of the region's mean colour, unlike the correction itself.
    assert changed[full].mean().abs() < 0.1 * correction[full].mean().abs()
    # Kept in the file and its log line; older files go without; the config sets it.
    described = _kept_in_the_file(tmp_path, sharp, plain, "moved_detail")
    assert "its detail where points moved elsewhere" in described
    with pytest.raises(ValueError, match="needs the band correction"):
        SpaceTimeModel("small", correction="gate", moved_detail=True)
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'off.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9",
             "spacetime.model.fluid_px=9", "spacetime.model.fluid_rule=smooth",
             "spacetime.model.fluid_border=false"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.moved_detail=true"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert trainer.model.moved_detail is True


def test_the_clamp_keeps_covered_pixels_within_their_neighbours_colours(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import _moved, local_range

    loose, held, g = _random_band_pair(13, 63, clamp_px=3)
    h, w = 48, 64
    alpha = torch.ones(1, 1, h, w)
    alpha[..., 20:28, 4:12] = 0.0  # a hole on the left
    feats = torch.rand(1, 4 + loose.feature_channels, h, w, generator=g)
    feats[:, 3:4] = 1.0
    water = torch.zeros(1, 1, h, w)
    water[..., 28:, 32:] = 1.0  # moving points, bottom right
    shift = torch.randn(1, 2, h, w, generator=g)
    frame = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    other = SplattedFrame(feats.roll(3, -1) * alpha, alpha, torch.ones(1, 1, h, w), shift, water)
    with torch.no_grad():
        base, confidence = CompositingDecoder().fill_batch([frame], [other], [0.5])
        before, after = loose.decode(frame, other, 0.5), held.decode(frame, other, 0.5)
    low, high = local_range(base, 3)
    assert torch.equal(low, -torch.nn.functional.max_pool2d(-base, 3, 1, 1))
    assert torch.equal(high, torch.nn.functional.max_pool2d(base, 3, 1, 1))
    covered = (confidence == 1).expand_as(base)
    hole = (confidence == 0).expand_as(base)
    assert covered.sum() > 0.8 * base.numel() and hole.any()
    # Covered pixels (the hole band's and the fluid band's) stay within the colours of the
    # built-in frame's 3x3 pixels around them; in holes the correction applies whole.
    assert (after[covered] >= low[covered] - 1e-6).all()
    assert (after[covered] <= high[covered] + 1e-6).all()
    assert torch.equal(after[hole], before[hole])
    outside = covered & ((before < low - 1e-3) | (before > high + 1e-3))
    assert outside.sum() > 100  # the loose correction does leave the range there
    # Where the whole correction would stay within the range, nothing changes.
    with torch.no_grad():
        x0, x1 = held._maps(frame, other)
        extra = torch.cat([base, confidence, _moved(frame, other)], 1)
        target = base + 2.0 * (held.img_decoder(x0, x1, 0.5, extra) - 0.5)
    inside = covered & (target >= low) & (target <= high)
    assert inside.sum() > 100
    assert torch.allclose(after[inside], before[inside], atol=1e-6)
    # Kept in the file and its log line; wrong widths and other corrections refused.
    described = _kept_in_the_file(tmp_path, held, loose, "clamp_px")
    assert "covered pixels within their 3x3 neighbours' colours" in described
    for bad in (2, -1, True, 2.5):
        with pytest.raises(ValueError, match="clamp window"):
            SpaceTimeModel("small", correction="band", clamp_px=bad)
    with pytest.raises(ValueError, match="the clamp needs the band correction"):
        SpaceTimeModel("small", correction="gate", clamp_px=3)
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'off.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9",
             "spacetime.model.fluid_px=63"]
    trainer = SpaceTimeTrainer(config(start + ["spacetime.model.clamp_px=5"] + SMALL),
                               tmp_path / "run", torch.device("cpu"))
    assert trainer.model.clamp_px == 5


def test_a_refiner_starts_at_zero_obeys_the_band_and_trains_alone_on_fixed_weights(tmp_path):
    from cinemagraph.models.decoder import CompositingDecoder, SplattedFrame
    from cinemagraph.models.spacetime import save_spacetime

    plain, refined, g = _random_band_pair(17, 0)
    refined.add_refiner(4)
    refined.eval()
    h, w = 48, 64
    alpha = torch.ones(1, 1, h, w)
    alpha[..., 20:28, 4:12] = 0.0  # a hole on the left
    feats = torch.rand(1, 4 + plain.feature_channels, h, w, generator=g)
    feats[:, 3:4] = 1.0
    frame = SplattedFrame(feats * alpha, alpha, torch.ones(1, 1, h, w), torch.zeros(1, 2, h, w),
                          torch.zeros(1, 1, h, w))
    with torch.no_grad():
        base, _ = CompositingDecoder().fill_batch([frame], [frame], [0.5])
        before = plain.decode(frame, frame, 0.5)
        # Its last convolution starts at zero: the model renders as it did.
        assert torch.equal(refined.decode(frame, frame, 0.5), before)
        torch.nn.init.normal_(refined.refiner.outc.conv.weight, std=0.05, generator=g)
        after = refined.decode(frame, frame, 0.5)
    # It changes the correction, only where the band lets any correction through.
    changed = (after - before).abs().amax(1)[0] > 1e-4
    assert changed[20:28, 4:12].all()
    assert not changed[:, 40:].any()  # beyond the 9-px band the frame stays the built-in one
    assert torch.equal(after[..., 40:], base[..., 40:])
    # Kept in the file (width in the metadata) and its log line; widths checked.
    described = _kept_in_the_file(tmp_path, refined, plain, "refiner_width")
    assert "refiner 4" in described
    loaded = load_spacetime(tmp_path / "on.safetensors")
    with torch.no_grad():
        assert torch.allclose(loaded.decode(frame, frame, 0.5), after, atol=1e-6)
    loaded.add_refiner(4)  # the same width: kept
    with pytest.raises(ValueError, match="holds a refiner of width 4, not 8"):
        loaded.add_refiner(8)
    with pytest.raises(ValueError, match="no residual correction"):
        SpaceTimeModel("official", refiner=4)
    # Trained alone from weights without one: the rest stays exactly as the file holds it.
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'off.safetensors'}",
             "spacetime.model.correction=band", "spacetime.model.band_px=9",
             "trainer.steps=2", "trainer.checkpoint_every=2"]
    run = start + ["spacetime.model.refiner=4", "spacetime.model.freeze_base=true"]
    trainer = SpaceTimeTrainer(config(run + SMALL), tmp_path / "run", torch.device("cpu"))
    fixed = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    saved = load_spacetime(tmp_path / "run" / "checkpoints" / "step_0000002.safetensors")
    assert saved.refiner_width == 4
    moved = 0
    for k, v in saved.state_dict().items():
        if k.startswith("refiner."):
            moved += not torch.equal(v, fixed[k])
        else:
            assert torch.equal(v, fixed[k]), k
    assert moved > 0
    with pytest.raises(UserError, match="leaves nothing to train"):
        SpaceTimeTrainer(config(start + ["spacetime.model.freeze_base=true"] + SMALL),
                         tmp_path / "run2", torch.device("cpu"))
    with pytest.raises(UserError, match="none is given"):
        SpaceTimeTrainer(config(["experiment=spacetime_small", "spacetime.model.refiner=4",
                                 "spacetime.model.freeze_base=true"] + SMALL),
                         tmp_path / "run4", torch.device("cpu"))
    with pytest.raises(UserError, match="spacetime.model.refiner=-2"):
        SpaceTimeTrainer(config(start + ["spacetime.model.refiner=-2"] + SMALL),
                         tmp_path / "run3", torch.device("cpu"))


def _kept_in_the_file(tmp_path, on, off, setting: str) -> str:
    """Save ``on`` and ``off`` (as ``on.safetensors`` and ``off.safetensors``), check that each
    loads with its own ``setting``, and return the log description of ``on``'s file."""
    from cinemagraph.models.spacetime import learned_components, save_spacetime

    for name, model in (("on", on), ("off", off)):
        save_spacetime(model, tmp_path / f"{name}.safetensors", half=False)
        loaded = load_spacetime(tmp_path / f"{name}.safetensors")
        assert getattr(loaded, setting) == getattr(model, setting)
    assert getattr(on, setting) != getattr(off, setting)
    return learned_components(tmp_path / "on.safetensors")[1].description


def _extra(model, frame):
    """The residual decoder's extra inputs for ``frame`` as both of a frame's splats."""
    from cinemagraph.models.decoder import CompositingDecoder
    from cinemagraph.models.spacetime import _moved

    base, confidence = CompositingDecoder().fill_batch([frame], [frame], [0.5])
    return torch.cat([base, confidence, _moved(frame, frame)], 1)


@pytest.mark.parametrize("meta, problem", [({"correction": "bogus"}, "unknown correction"),
                                           ({"correction": "band", "band_px": "wide"},
                                            "malformed band width"),
                                           ({"correction": "band", "crack_px": "1.5"},
                                            "malformed band width"),
                                           ({"correction": "band", "fluid_px": "wide"},
                                            "malformed band width"),
                                           ({"correction": "band", "fluid_px": "-3"},
                                            "fluid band width -3 px"),
                                           ({"correction": "band", "fluid_px": "9",
                                             "fluid_rule": "inside"}, "unknown fluid rule"),
                                           ({"correction": "band", "fluid_px": "9",
                                             "fluid_border": "no"}, "malformed fluid border"),
                                           ({"correction": "band", "moved_detail": "yes"},
                                            "malformed moved detail"),
                                           ({"correction": "gate", "moved_detail": "true"},
                                            "needs the band correction"),
                                           ({"correction": "band", "clamp_px": "wide"},
                                            "malformed band width"),
                                           ({"correction": "band", "clamp_px": "4"},
                                            "clamp window 4 px"),
                                           ({"correction": "band", "refiner": "wide"},
                                            "malformed band width")])
def test_a_file_naming_an_unknown_correction_fails_in_one_line(meta, problem, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in SpaceTimeModel("small", "band").state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"), metadata={"preset": "small", **meta})
    with pytest.raises(UserError, match=problem):
        load_spacetime(tmp_path / "w.safetensors")


def test_the_gate_sees_geometry_only_and_older_weights_load_and_train_without_one(tmp_path):
    from cinemagraph.models.decoder import SplattedFrame
    from cinemagraph.models.spacetime import GATE_CHANNELS, save_spacetime

    g = torch.Generator().manual_seed(5)
    model = SpaceTimeModel("small").eval()
    assert SpaceTimeModel("official").gate is None
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    for p in model.gate.parameters():
        torch.nn.init.normal_(p, std=0.3, generator=g)
    seen = []
    model.gate.register_forward_hook(lambda module, args, out: seen.append((args[0], out)))
    channels = 4 + model.feature_channels
    alpha = torch.rand(1, 1, 32, 48, generator=g)
    alpha[..., :6, :] = 0.0
    depth = 1 + torch.rand(1, 1, 32, 48, generator=g)
    moved = 3 * torch.randn(1, 2, 32, 48, generator=g)

    def frame(displacement=moved):
        feats = torch.rand(1, channels, 32, 48, generator=g)
        feats[:, 3:4] = 1.0  # the splatted ones: coverage
        return SplattedFrame(feats * alpha, alpha, depth, displacement)

    with torch.no_grad():
        a = model.decode(frame(), frame(), 0.4)
        b = model.decode(frame(), frame(), 0.4)  # other colours and features, same geometry
        model.decode(frame(torch.zeros_like(moved)), frame(), 0.4)
    assert seen[0][0].shape[1] == GATE_CHANNELS
    assert (a - b).abs().max() > 1e-2
    assert torch.equal(seen[0][0], seen[1][0]) and torch.equal(seen[0][1], seen[1][1])
    assert (seen[0][1] - seen[2][1]).abs().max() > 1e-3  # the displacement reaches the gate
    assert seen[0][1].std() > 1e-3  # and it varies over the frame
    # Our weights from before the gate load without one, render as an ungated model, and
    # training adds a fresh one with its own learning rate.
    old = SpaceTimeModel("small", correction="everywhere")
    old.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("gate.")})
    save_spacetime(old, tmp_path / "old.safetensors", half=False)
    loaded = load_spacetime(tmp_path / "old.safetensors")
    fwd, bwd = frame(), frame()
    with torch.no_grad():
        assert loaded.gate is None and torch.equal(loaded.decode(fwd, bwd, 0.4),
                                                   old.decode(fwd, bwd, 0.4))
    start = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'old.safetensors'}",
             "train.lr=1e-4"]
    cfg = config(start + ["spacetime.model.gate_lr=0.01"] + SMALL)
    trainer = SpaceTimeTrainer(cfg, tmp_path / "run", torch.device("cpu"))
    assert trainer.model.gate is not None
    rates = {id(p): group["lr"] for group in trainer.opt_g.param_groups for p in group["params"]}
    assert all(rates[id(p)] == 0.01 for p in trainer.model.gate.parameters())
    assert rates[id(trainer.model.img_decoder.outc.conv.weight)] == 1e-4
    assert len(rates) == sum(1 for _ in trainer.model.parameters())
    fixed = SpaceTimeTrainer(config(start + ["spacetime.model.gate_lr=0"] + SMALL),
                             tmp_path / "fixed", torch.device("cpu"))
    assert [group["lr"] for group in fixed.opt_g.param_groups] == [1e-4, 0.0]  # 0 is not unset


def test_two_steps_on_real_video_layout(tmp_path):
    import imageio.v2 as imageio
    import numpy as np

    folder = tmp_path / "videos" / "train"
    folder.mkdir(parents=True)
    g = np.random.default_rng(0)
    base = (g.random((48, 64, 3)) * 255).astype(np.uint8)
    frames = [np.roll(base, shift=i, axis=1) for i in range(6)]  # drifts right 1 px a frame
    imageio.mimwrite(folder / "00001_00000.mp4", frames, fps=10, macro_block_size=1)
    motion = np.zeros((1, 2, 48, 64), np.float32)
    motion[0, 0] = 1.0
    np.save(folder / "00001_00000_motion.npy", motion)
    np.save(folder / "00001_00000_depth.npy", np.full((48, 64), 3.0, np.float32))
    cfg = config(["experiment=spacetime_small", "dataset=videos", f"spacetime.data.root={tmp_path / 'videos'}",
                  "spacetime.data.size=[48,64]", "spacetime.data.frames=6", "trainer.steps=2",
                  "trainer.batch_size=1", "trainer.device=cpu", "trainer.log_every=1"])
    trainer = SpaceTimeTrainer(cfg, tmp_path / "run", torch.device("cpu"))
    raw = trainer.dataset.source.scene(0, "anim", None, [2], end=True)
    assert raw["targets"].shape == (1, 3, 48, 64)
    assert raw["mask"].all() and torch.allclose(raw["motion"][0], torch.tensor(1.0))
    # The end photo is the video's last frame (frame 6 asked, 5 is the last): 5 px drift.
    gaps = [(raw["end"] - torch.from_numpy(f).permute(2, 0, 1).float() / 255).abs().mean()
            for f in frames]
    assert int(torch.stack(gaps).argmin()) == 5
    item = trainer.dataset[0]
    assert item["kind"] == "anim" and item["end_ldi"] is not None
    assert all(1 <= s["t"] < 6 and s["backward"] is not None for s in item["samples"])
    trainer.run()
    assert trainer.step == 2


def test_decoding_a_batch_equals_decoding_each_frame():
    from cinemagraph.models.decoder import SplattedFrame

    g = torch.Generator().manual_seed(1)
    model = SpaceTimeModel("small").eval()
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05, generator=g)
    channels = 4 + model.feature_channels

    def frame():
        alpha = torch.rand(1, 1, 36, 50, generator=g)
        feats = torch.rand(1, channels, 36, 50, generator=g) * alpha
        return SplattedFrame(feats, alpha, 1 + 3 * torch.rand(1, 1, 36, 50, generator=g))

    fwds, bwds, times = [frame(), frame(), frame()], [frame(), None, frame()], [0.2, 0.0, 0.7]
    with torch.no_grad():
        batch = model.decode_batch(fwds, bwds, times)
        single = torch.cat([model.decode(f, b, t) for f, b, t in zip(fwds, bwds, times)])
    assert torch.allclose(batch, single, atol=1e-5)
    assert (single[0] - single[2]).abs().max() > 1e-3  # the frames do differ


def _data(**kw):
    from omegaconf import OmegaConf

    from cinemagraph.train.config import SpaceTimeDataConfig

    base = dict(scenes=3, size=[48, 64], frames=8)
    return OmegaConf.structured(SpaceTimeDataConfig(**{**base, **kw}))


def test_a_planned_view_splats_as_the_render():
    from cinemagraph.models import RGBDisparityFeatures
    from cinemagraph.pipeline import Components, build_scene
    from cinemagraph.motion.field import MotionField
    from cinemagraph.render.pipeline import RenderSettings, plan_cloud_view, splat_cloud
    from cinemagraph.render.pointcloud import point_features
    from cinemagraph.render.splat import apply_splat_plan
    from cinemagraph.train.spacetime_samples import NoFeatures, _compact, to_device

    source = SpaceTimeSamples(_data()).source
    raw = source.scene(1, "nvs", "circle", [3], end=False)
    mask = raw["mask"][None]
    motion = MotionField(raw["motion"][None] * mask, mask.bool())
    args = (raw["image"][None], raw["depth"][None], motion, 8)
    rendered = build_scene(*args, Components(), border=0.1)
    planned = build_scene(*args, Components(features=NoFeatures()), border=0.1)
    pose, K, settings = raw["path"].world_to_camera[3], raw["path"].K[3], RenderSettings()
    for step, backward in ((0, False), (5, False), (2, True)):
        positions = rendered.cloud.positions(step, backward)
        want = splat_cloud(rendered.cloud, positions, pose, K, (48, 64), settings,
                           displacement=True)
        plan, depth, moved, moving = plan_cloud_view(planned.cloud,
                                                     planned.cloud.positions(step, backward),
                                                     pose, K, (48, 64), settings)
        feats = point_features(planned.ldi, RGBDisparityFeatures()(planned.ldi))
        got = apply_splat_plan(plan, feats)
        assert torch.allclose(got.features, want.features, atol=1e-5)
        assert torch.equal(plan.alpha, want.alpha)
        covered = want.alpha > 1e-3
        assert torch.allclose(depth[covered], want.depth[covered], rtol=1e-5)
        assert torch.allclose(moved * covered, want.displacement * covered, atol=1e-3)
        assert torch.allclose(moving * covered, want.moving * covered, atol=1e-5)
        # As the loader hands it on: int32 point indices, the same splat and gradients.
        small, small_depth, small_moved, small_moving = _compact((plan, depth, moved, moving))
        assert small.table.dtype == torch.int32 and torch.equal(small.table, plan.table)
        assert small_depth.is_contiguous() and small_moved.is_contiguous()
        assert small_moving.is_contiguous()
        wide, narrow = feats.clone().requires_grad_(), feats.clone().requires_grad_()
        a, b = apply_splat_plan(plan, wide).features, apply_splat_plan(small, narrow).features
        assert torch.equal(a, b)
        (a * got.features).sum().backward(), (b * got.features).sum().backward()
        assert torch.equal(wide.grad, narrow.grad)
    item = SpaceTimeSamples(_data())[0]
    views = [s[k] for s in item["samples"] for k in ("forward", "backward") if s[k] is not None]
    assert views and all(v[0].table.dtype == torch.int32 and v[1].is_contiguous()
                         and v[2].is_contiguous() and v[3].is_contiguous() for v in views)
    moved = to_device(item, torch.device("cpu"))  # widened again where the step runs
    wide_views = [s[k] for s in moved["samples"] for k in ("forward", "backward")
                  if s[k] is not None]
    assert all(w[0].table.dtype == torch.int64 and torch.equal(w[0].table, v[0].table)
               for w, v in zip(wide_views, views))


def test_displacement_is_zero_at_the_source_camera_and_follows_the_flow_and_the_camera():
    from cinemagraph.motion.field import MotionField
    from cinemagraph.pipeline import Components, build_scene
    from cinemagraph.render.pipeline import RenderSettings, splat_cloud

    source = SpaceTimeSamples(_data()).source
    raw = source.scene(1, "nvs", "circle", [3], end=False)
    mask = raw["mask"][None]
    motion = MotionField(raw["motion"][None] * mask, mask.bool())
    scene = build_scene(raw["image"][None], raw["depth"][None], motion, 8, Components(),
                        border=0.1)
    cloud, K, eye, settings = scene.cloud, raw["K"], torch.eye(4), RenderSettings()
    assert splat_cloud(cloud, cloud.positions(0), eye, K, (48, 64), settings).displacement is None
    still = splat_cloud(cloud, cloud.positions(0), eye, K, (48, 64), settings, displacement=True)
    covered = still.alpha > 0.5
    assert covered.float().mean() > 0.9
    assert (still.displacement * covered).abs().amax() < 1e-3  # the photo itself
    flowing = splat_cloud(cloud, cloud.positions(3), eye, K, (48, 64), settings,
                          displacement=True)
    fluid = (mask[:, 0] > 0.5)[:, None] & (flowing.alpha > 0.5) & (still.alpha > 0.5)
    speed = (raw["motion"][None] * mask).norm(dim=1, keepdim=True)
    moved = flowing.displacement.norm(dim=1, keepdim=True)
    assert moved[fluid].mean() > 1.5 * speed[fluid].mean()  # about 3 frames' worth
    static = ~fluid & (flowing.alpha > 0.99) & (speed < 1e-6)  # but where fluid points arrive
    assert moved[static].mean() < 0.1 * moved[fluid].mean()
    pose = raw["path"].world_to_camera[3]
    seen = splat_cloud(cloud, cloud.positions(0), pose, raw["path"].K[3], (48, 64), settings,
                       displacement=True)
    assert (seen.displacement.norm(dim=1) * (seen.alpha[:, 0] > 0.5)).amax() > 0.5
    # The share of moving points: 1 over the fluid, 0 over what stands still, whatever
    # the camera does; a static scene has none.
    assert torch.equal(still.moving[covered] > 0.5, (mask > 0.5)[covered])
    assert still.moving[(still.alpha > 0.5) & (mask < 0.5)].max() == 0.0
    assert seen.moving.max() > 0.999 and seen.moving.min() == 0.0
    frozen = build_scene(raw["image"][None], raw["depth"][None], MotionField.static(48, 64), 8,
                         Components(), border=0.1).cloud
    assert splat_cloud(frozen, frozen.positions(0), pose, raw["path"].K[3], (48, 64),
                       settings, displacement=True).moving.max() == 0.0


def test_two_frame_samples_lift_the_backward_cloud_from_the_end_photo():
    data = _data(kinds=["anim"], two_frame=True)
    samples = SpaceTimeSamples(data, per_scene=3)
    item = samples[0]
    kind, path, frames = samples._choose(0)
    raw = samples.source.scene(0, kind, path, frames, end=True)
    assert item["kind"] == "anim" and [s["t"] for s in item["samples"]] == frames
    assert all(1 <= t < 8 for t in frames) and len(frames) == 3
    for s, target in zip(item["samples"], raw["targets"]):
        assert torch.equal(s["target"], target)
    end = item["end_ldi"]
    for layer in range(end.num_layers):  # each layer shows the end photo where it is seen
        seen = end.visible[layer, 0]
        assert torch.allclose(end.color[layer][:, seen], raw["end"][:, seen])
    assert not torch.allclose(raw["end"], raw["image"])  # the fluid moved
    single = SpaceTimeSamples(_data(kinds=["anim"], two_frame=False), per_scene=3)[0]
    assert single["end_ldi"] is None
    again = samples[0]  # the same item on every call
    assert all(torch.equal(a["forward"][0].table, b["forward"][0].table)
               for a, b in zip(item["samples"], again["samples"]))


def test_colour_transforms_keep_greys_grey_and_the_mean_brightness_by_the_gain():
    import numpy as np

    from cinemagraph.train.spacetime_samples import color_transform

    rng = np.random.default_rng(0)
    matrices = [color_transform(rng) for _ in range(50)]
    grey = torch.tensor([0.3, 0.3, 0.3])
    colour = torch.tensor([0.8, 0.3, 0.1])
    hues = []
    for m in matrices:
        g = m @ grey
        assert torch.allclose(g, g.mean().expand(3), atol=1e-6)  # grey stays grey
        gain = float(g[0] / 0.3)
        assert 0.6 <= gain <= 1.15
        c = m @ colour
        assert torch.isclose(c.mean(), gain * colour.mean(), atol=1e-5)  # hue/saturation keep it
        hues.append(int(torch.argmax(c)))
    assert len(set(hues)) == 3  # hues are rotated all the way round


def test_colour_augmentation_recolours_the_photo_and_its_targets_alike():
    data = _data(kinds=["anim"], two_frame=True, color_augment=1.0)
    samples = SpaceTimeSamples(data, per_scene=2)
    plain = SpaceTimeSamples(_data(kinds=["anim"], two_frame=True), per_scene=2)
    item, ref = samples[0], plain[0]
    kind, path, frames = samples._choose(0)
    assert [s["t"] for s in item["samples"]] == [s["t"] for s in ref["samples"]] == frames

    def pairs(a, b):  # (N, 3) colours of pixels not clamped by the transform
        a, b = a.reshape(3, -1).t(), b.reshape(3, -1).t()
        keep = ((b > 0.01) & (b < 0.99)).all(1)
        return a[keep], b[keep]

    raw = plain.source.scene(0, kind, path, frames, end=True)
    seen = item["ldi"].visible[0, 0]
    src, dst = pairs(raw["image"][:, seen], item["ldi"].color[0][:, seen])
    matrix = torch.linalg.lstsq(src, dst).solution.t()  # the photo's colour transform
    assert not torch.allclose(matrix, torch.eye(3), atol=0.05)
    for s, r in zip(item["samples"], ref["samples"]):  # the targets went through the same one
        a, b = pairs(r["target"], s["target"])
        assert torch.allclose(a @ matrix.t(), b, atol=2e-3)
    end_seen = item["end_ldi"].visible[0, 0]
    a, b = pairs(raw["end"][:, end_seen], item["end_ldi"].color[0][:, end_seen])
    assert torch.allclose(a @ matrix.t(), b, atol=2e-3)


def test_depth_softening_blurs_the_photos_depth_and_keeps_the_targets_exact():
    from cinemagraph.train.spacetime_samples import soften_depth

    step = torch.ones(1, 24, 40)
    step[..., 20:] = 4.0  # a depth edge at column 20
    soft = soften_depth(step, 2.0)
    row = soft[0, 12]
    assert torch.allclose(soft[..., :8], step[..., :8]) and torch.allclose(soft[..., 32:], step[..., 32:])
    assert ((row[17:23] > 1.01) & (row[17:23] < 3.99)).all()  # the edge is now a ramp
    assert (row[1:] >= row[:-1] - 1e-5).all()

    data = dict(kinds=["nvs"], max_layers=1)
    item = SpaceTimeSamples(_data(depth_blur=1.0, **data), per_scene=2)[1]
    ref = SpaceTimeSamples(_data(**data), per_scene=2)[1]
    assert [s["t"] for s in item["samples"]] == [s["t"] for s in ref["samples"]]
    for s, r in zip(item["samples"], ref["samples"]):
        assert torch.equal(s["target"], r["target"]) and torch.equal(s["valid"], r["valid"])
    assert torch.equal(item["ldi"].color, ref["ldi"].color)
    assert not torch.allclose(item["ldi"].depth, ref["ldi"].depth, rtol=1e-3)
    with pytest.raises(UserError, match="depth_blur_sigma"):
        SpaceTimeSamples(_data(depth_blur=0.5, depth_blur_sigma=[0.0, 2.0]), per_scene=2)


def test_our_weights_save_into_a_new_folder_and_load_back_as_fp16(tmp_path):
    from cinemagraph.models.spacetime import save_spacetime

    model = SpaceTimeModel("small")
    path = tmp_path / "new" / "folder" / "w.safetensors"
    save_spacetime(model, path)
    loaded = load_spacetime(path)
    assert loaded.preset == "small" and not list(path.parent.glob("*.tmp"))
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.half().float()), k


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_our_weights_get_the_mode_the_umask_gives_other_new_files(tmp_path):
    import os

    from cinemagraph.models.spacetime import save_spacetime

    old = os.umask(0o027)
    try:
        save_spacetime(SpaceTimeModel("small"), tmp_path / "w.safetensors")
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "w.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "other.txt").stat().st_mode & 0o777 == 0o640


def test_the_decoders_disparity_is_normalised_over_the_covered_pixels_of_both_frames():
    from cinemagraph.models.decoder import SplattedFrame

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


def test_point_indices_made_in_the_workers_pick_the_points_in_the_clouds_order():
    from cinemagraph.render.pointcloud import point_features

    item = SpaceTimeSamples(_data(kinds=["anim"], two_frame=True), per_scene=1)[1]
    for ldi, index in ((item["ldi"], item["points"]), (item["end_ldi"], item["end_points"])):
        feats = torch.randn(ldi.num_layers, 6, *ldi.size)
        assert index.numel() == int(ldi.coverage.sum())
        assert torch.equal(point_features(ldi, feats, index), point_features(ldi, feats))


def test_a_share_of_the_synthetic_scenes_get_floaters_the_same_every_time():
    from cinemagraph.train.spacetime_samples import build_scene_source

    none = build_scene_source(_data())
    some = build_scene_source(_data(floaters=0.5))
    counts = [some.floaters_of(i) for i in range(40)]
    assert all(none.floaters_of(i) == 0 for i in range(40))
    assert 5 < sum(c > 0 for c in counts) < 35 and all(c in (0, 2, 3, 4) for c in counts)
    assert counts == [build_scene_source(_data(floaters=0.5)).floaters_of(i) for i in range(40)]
    index = counts.index(max(counts))
    raw = some.scene(index, "anim", None, [3], end=False)
    ref = none.scene(index, "anim", None, [3], end=False)
    assert not torch.equal(raw["image"], ref["image"])
    with pytest.raises(UserError, match="floaters"):
        build_scene_source(_data(floaters=1.5))


def test_relit_scenes_keep_their_shapes_and_darken_what_lies_behind():
    import numpy as np

    from cinemagraph.data.scene import RELIGHT_BACKGROUND, RELIGHT_BOX, relight, sample_scene
    from cinemagraph.train.spacetime_samples import build_scene_source

    scene = sample_scene(3, "train", (48, 64))
    lit = relight(scene, np.random.default_rng(0))
    assert [r.name for r in lit.rects] == [r.name for r in scene.rects]
    gains = {}
    for before, after in zip(scene.rects, lit.rects):
        assert (after.origin, after.u, after.v, after.flow) == (before.origin, before.u, before.v, before.flow)
        ratio = np.array(after.tint) / np.array(before.tint)
        assert np.allclose(ratio, ratio[0])  # a gain, no colour cast
        gains.setdefault(before.name.split(".")[0], set()).add(round(float(ratio[0]), 6))
    assert all(len(g) == 1 for g in gains.values())  # one gain for all of a box's faces
    assert RELIGHT_BACKGROUND[0] <= gains["sky"].pop() <= RELIGHT_BACKGROUND[1]
    boxes = [g.pop() for name, g in gains.items() if name.startswith(("occluder", "rock"))]
    assert boxes and all(RELIGHT_BOX[0] <= g <= RELIGHT_BOX[1] for g in boxes)
    assert gains["ground"] == {1.0}
    # A share of the training scenes, the same every time; the rest as drawn.
    none, some = build_scene_source(_data()), build_scene_source(_data(relight=0.5))
    relit = [some.relight_rng(i) is not None for i in range(40)]
    assert all(none.relight_rng(i) is None for i in range(40)) and 5 < sum(relit) < 35
    assert relit == [build_scene_source(_data(relight=0.5)).relight_rng(i) is not None
                     for i in range(40)]
    index, plain = relit.index(True), relit.index(False)
    a, b = (src.scene(index, "anim", None, [3], end=False) for src in (some, none))
    assert torch.equal(a["depth"], b["depth"]) and torch.equal(a["motion"], b["motion"])
    assert not torch.equal(a["image"], b["image"])
    assert torch.equal(some.scene(plain, "anim", None, [3], end=False)["image"],
                       none.scene(plain, "anim", None, [3], end=False)["image"])
    with pytest.raises(UserError, match="relight"):
        build_scene_source(_data(relight=-0.1))


def test_extra_photographs_reach_the_training_scenes_of_the_train_split_only(tmp_path, caplog):
    import logging

    import imageio.v3 as iio
    import numpy as np

    from cinemagraph.train.spacetime_samples import build_scene_source

    folder = tmp_path / "photos"
    folder.mkdir()
    iio.imwrite(folder / "a.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3),
                                                                     dtype=np.uint8))
    with caplog.at_level(logging.INFO, logger="cinemagraph.train"):
        plain = build_scene_source(_data())
        assert caplog.messages[-1].endswith("from the 10 built-in photographs")
        more = build_scene_source(_data(photos=str(folder)))
        assert caplog.messages[-1].endswith(f"photographs and 1 in '{folder}'")
    assert plain.photos == () and more.photos == (str(folder / "a.png"),)
    differ = [not torch.equal(more.scene(i, "anim", None, [3], end=False)["image"],
                              plain.scene(i, "anim", None, [3], end=False)["image"])
              for i in range(3)]
    assert any(differ)
    with pytest.raises(UserError, match="train split"):
        build_scene_source(_data(photos=str(folder), split="test"))
    with pytest.raises(UserError, match="does not exist"):
        build_scene_source(_data(photos=str(tmp_path / "nowhere")))


def test_the_unreleased_candidate_loads_but_is_never_found_by_default(monkeypatch):
    import hashlib
    from pathlib import Path

    from cinemagraph.models.spacetime import find_spacetime

    root = Path(__file__).resolve().parents[2] / "pretrained"
    candidates = sorted((root / "candidates").glob("*.safetensors"))
    if not candidates:
        pytest.skip("no candidate weights in this checkout")
    readme = (root / "candidates" / "README.md").read_text()
    for candidate in candidates:
        assert candidate.name in readme
        assert hashlib.sha256(candidate.read_bytes()).hexdigest() in readme
        model = load_spacetime(candidate)  # fits the current layout (carried over where needed)
        assert model.preset == "base"
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    found = find_spacetime(None)
    assert found is None or "candidates" not in str(found)
    assert find_spacetime(root / "candidates") == found


def test_the_shipped_weights_are_found_by_default_and_match_their_model_card(monkeypatch):
    import hashlib
    import json
    from pathlib import Path

    from safetensors import safe_open

    from cinemagraph.models.spacetime import OWN_WEIGHTS, SpaceTimeEnsemble, find_spacetime

    root = Path(__file__).resolve().parents[2] / "pretrained"
    shipped = root / OWN_WEIGHTS
    if not shipped.is_file():
        pytest.skip("no shipped weights in this checkout")
    # Issue 8: the shipped weights take at most 16 MB in all (what pretrained/ holds).
    assert sum(f.stat().st_size for f in root.rglob("*.safetensors")) <= 16 * 10**6
    card = (root / "MODEL_CARD.md").read_text()
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() in card
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    monkeypatch.chdir(root.parent)
    assert find_spacetime(None).resolve() == shipped.resolve()
    model = load_spacetime(shipped)
    assert isinstance(model, SpaceTimeEnsemble) and model.weights == (0.7, 0.3)
    assert (model.preset, model.correction, model.band_px, model.crack_px, model.fluid_px,
            model.fluid_rule, model.fluid_border) == ("base", "band", 191, 9, 191, "smooth", False)
    with safe_open(str(shipped), "pt") as f:
        meta = f.metadata()
    assert meta["card"] == "pretrained/MODEL_CARD.md" and meta["storage"] == "int8 and fp16"
    members = json.loads(meta["members"])
    assert [m["weight"] for m in members] == [0.7, 0.3]
    for member in members:  # each member file is named, with its SHA-256, in the card
        assert member["sha256"] in card and Path(member["file"]).name in card


def test_the_render_splats_the_displacement_only_for_a_decoder_that_reads_it():
    from cinemagraph.motion.field import MotionField
    from cinemagraph.pipeline import Components, build_scene
    from cinemagraph.render.camera import named_path
    from cinemagraph.render.pipeline import render_frames

    source = SpaceTimeSamples(_data()).source
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


def test_the_perceptual_loss_is_off_and_says_so_without_vgg_weights_and_trains_with_them(
        tmp_path, monkeypatch, caplog):
    # Random VGG-16 weights at the official file name, only to exercise the plumbing: the
    # loss is built from them, logged per step and trained through; its values mean nothing.
    import logging
    import math

    torchvision = pytest.importorskip("torchvision")
    pytest.importorskip("lpips")
    from cinemagraph.train.spacetime import VGG_FILE

    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    cfg = config(["experiment=spacetime_small", "trainer.steps=1", "spacetime.loss.perceptual=1.0",
                  "spacetime.loss.gan=0", "spacetime.loss.feature_matching=0"] + SMALL)
    with caplog.at_level(logging.INFO, logger="cinemagraph.train"):
        off = SpaceTimeTrainer(cfg, tmp_path / "off", torch.device("cpu"))
    assert off.perceptual is None
    assert "perceptual loss off: no VGG-16 weights" in caplog.text  # said, not replaced
    off.run()
    assert "perceptual" not in next(csv.DictReader(open(tmp_path / "off" / "metrics.csv")))

    (hub / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16().state_dict(), hub / "checkpoints" / VGG_FILE)
    on = SpaceTimeTrainer(cfg, tmp_path / "on", torch.device("cpu"))
    assert on.perceptual is not None
    assert not any(p.requires_grad for p in on.perceptual.parameters())  # a fixed metric
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(on.perceptual(image, image).mean()) == pytest.approx(0.0, abs=1e-6)
    on.run()
    row = next(csv.DictReader(open(tmp_path / "on" / "metrics.csv")))
    assert math.isfinite(float(row["perceptual"])) and float(row["perceptual"]) > 0
    w = cfg.spacetime.loss  # the loss includes it
    assert float(row["loss"]) == pytest.approx(
        w.l1 * float(row["l1"]) + w.l2 * float(row["l2"]) + w.perceptual * float(row["perceptual"]),
        rel=1e-5)


def test_the_psnr_loss_is_the_mean_over_scenes_of_each_scenes_negative_psnr(tmp_path):
    import math

    cfg = config(["experiment=spacetime_small", "trainer.steps=1", "spacetime.loss.l1=0",
                  "spacetime.loss.l2=0", "spacetime.loss.psnr=1", "spacetime.loss.gan=0",
                  "spacetime.loss.feature_matching=0"] + SMALL
                 + ["trainer.batch_size=4", "spacetime.data.per_scene=2"])
    trainer = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    trainer.run()
    row = next(csv.DictReader(open(tmp_path / "metrics.csv")))
    pred, target, valid = trainer._last  # the step's prediction, before the update
    assert pred.shape[0] == 4  # two scenes of two samples, in order
    errors = [float((v * (p - t) ** 2).sum()) for p, t, v in zip(pred, target, valid)]
    counts = [float(3 * v.sum()) for v in valid]
    scenes = [(errors[0] + errors[1]) / (counts[0] + counts[1]),
              (errors[2] + errors[3]) / (counts[2] + counts[3])]
    assert abs(scenes[0] - scenes[1]) > 1e-6  # the scenes differ: a real mean
    from cinemagraph.train.spacetime import PSNR_EPS

    expected = sum(10 * math.log10(e + PSNR_EPS) for e in scenes) / 2
    assert float(row["neg_psnr"]) == pytest.approx(expected, rel=1e-4)
    assert float(row["loss"]) == pytest.approx(expected, rel=1e-4)  # nothing else weighs
    # neither the whole batch's pooled error nor each sample's own
    assert abs(10 * math.log10(float(row["l2"]) + PSNR_EPS) - expected) > 1e-3
    samples = sum(10 * math.log10(e / c + PSNR_EPS) for e, c in zip(errors, counts)) / 4
    assert abs(samples - expected) > 1e-3


def test_a_spacetime_run_writes_sample_frames_and_resumes_where_it_stopped(tmp_path):
    cfg = config(["experiment=spacetime_small", "trainer.steps=2", "trainer.checkpoint_every=1"]
                 + SMALL)
    trainer = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    trainer.run()
    assert (tmp_path / "samples" / "step_0000002.png").exists()
    assert (tmp_path / "checkpoints" / "step_0000002.pt").exists()
    cfg.trainer.steps = 3
    again = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    assert again.step == 2
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[k], v), k
    assert torch.equal(again.opt_g.state_dict()["state"][0]["exp_avg"],
                       trainer.opt_g.state_dict()["state"][0]["exp_avg"])
    again.run()
    assert again.step == 3
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "metrics.csv"))] == [1, 2, 3]


def test_the_weight_files_may_be_written_in_fp16_and_resuming_keeps_fp32(tmp_path):
    from safetensors import safe_open

    def run(name, *over):
        cfg = config(["experiment=spacetime_small", "trainer.steps=1", "trainer.checkpoint_every=1"]
                     + list(over) + SMALL)
        trainer = SpaceTimeTrainer(cfg, tmp_path / name, torch.device("cpu"))
        trainer.run()
        path = tmp_path / name / "checkpoints" / "step_0000001.safetensors"
        with safe_open(str(path), "pt") as f:
            found = {f.get_tensor(k).dtype for k in f.keys()}
        return cfg, trainer, path, found

    _, _, full, kinds = run("fp32")
    assert kinds == {torch.float32}
    cfg, trainer, half, kinds = run("fp16", "spacetime.model.save_fp16=true")
    assert kinds == {torch.float16}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    # The fp16 file loads into fp32 parameters within fp16 rounding of the run's weights.
    loaded = load_spacetime(half).state_dict()
    for k, v in trainer.model.state_dict().items():
        assert loaded[k].dtype == v.dtype
        assert torch.allclose(loaded[k], v, rtol=1e-3, atol=1e-4), k
    # Resuming reads the .pt checkpoint: the fp32 weights exactly.
    cfg.trainer.steps = 2
    again = SpaceTimeTrainer(cfg, tmp_path / "fp16", torch.device("cpu"))
    assert again.step == 1
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[k], v), k


def test_a_moving_average_of_the_weights_is_what_the_weight_files_hold(tmp_path):
    cfg = config(["experiment=spacetime_small", "trainer.steps=2", "trainer.checkpoint_every=1",
                  "spacetime.model.ema=0.75"] + SMALL)
    trainer = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    weights = []
    update = trainer.update_ema

    def record():  # the weights after each optimiser step, as the average is updated
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        update()

    trainer.update_ema = record
    trainer.run()
    assert len(weights) == 2
    # ema = 0.75 ema + 0.25 weights after each step, from the weights it starts with.
    want = {k: 0.75 * (0.75 * start[k] + 0.25 * weights[0][k]) + 0.25 * weights[1][k]
            for k in start}
    saved = load_spacetime(tmp_path / "checkpoints" / "step_0000002.safetensors").state_dict()
    moved = 0
    for k, v in saved.items():
        assert torch.allclose(v, want[k], atol=1e-6), k
        moved += not torch.allclose(v, weights[1][k], atol=1e-6)
    assert moved > 0  # the average is not the last weights
    state = torch.load(tmp_path / "checkpoints" / "step_0000002.pt", weights_only=True)
    assert torch.equal(state["spacetime"]["img_decoder.outc.conv.weight"],
                       weights[1]["img_decoder.outc.conv.weight"])
    # Resumed, the average goes on from where it was.
    cfg.trainer.steps = 3
    again = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    for k, v in again.ema.state_dict().items():
        assert torch.allclose(v, want[k], atol=1e-6), k
    # A run started without the average does not resume with it (nor silently restarts it).
    plain = config(["experiment=spacetime_small", "trainer.steps=1"] + SMALL)
    SpaceTimeTrainer(plain, tmp_path / "plain", torch.device("cpu")).run()
    plain.trainer.steps = 2
    plain.spacetime.model.ema = 0.9
    with pytest.raises(UserError, match="holds no 'ema'"):
        SpaceTimeTrainer(plain, tmp_path / "plain", torch.device("cpu"))
    bad = config(["experiment=spacetime_small", "spacetime.model.ema=1.5"] + SMALL)
    with pytest.raises(UserError, match="spacetime.model.ema=1.5"):
        SpaceTimeTrainer(bad, tmp_path / "bad", torch.device("cpu"))


def test_a_thin_line_covers_one_row_or_column_of_the_fluid_thinly_and_keeps_its_colour():
    from cinemagraph.models.decoder import SplattedFrame
    from cinemagraph.train.spacetime import THIN_LINE_OPACITY, SpaceTimeRender, thin_line

    g = torch.Generator().manual_seed(11)
    alpha = 0.5 + 0.5 * torch.rand(1, 1, 24, 32, generator=g)
    feats = torch.rand(1, 6, 24, 32, generator=g) * alpha
    water = torch.zeros(1, 1, 24, 32)
    water[..., 8:, 10:] = 1.0
    frame = SplattedFrame(feats, alpha, torch.ones_like(alpha), torch.zeros(1, 2, 24, 32), water)
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        out = thin_line(frame)
        ratio = out.alpha / frame.alpha
        changed = ratio < 1 - 1e-6
        # One row or one column, over the moving pixels only, by one factor in the range.
        assert changed.any() and not changed[water < 0.5].any()
        rows, cols = changed[0, 0].any(1).sum(), changed[0, 0].any(0).sum()
        assert rows == 1 or cols == 1
        seen.add("row" if cols > 1 else "column" if rows > 1 else "either")
        lo, hi = THIN_LINE_OPACITY
        assert lo - 1e-6 <= ratio[changed].min() and ratio[changed].max() <= hi + 1e-6
        assert torch.allclose(ratio[changed], ratio[changed][0].expand(int(changed.sum())))
        # The colour (features over opacity) is kept; depth and the rest untouched.
        assert torch.allclose(out.features / out.alpha, frame.features / frame.alpha, atol=1e-5)
        assert out.depth is frame.depth and out.moving is frame.moving
    assert {"row", "column"} <= seen
    assert torch.equal(thin_line(frame._replace(moving=None)).alpha, frame.alpha)
    unmoved = frame._replace(moving=torch.zeros_like(water))
    assert torch.equal(thin_line(unmoved).alpha, frame.alpha)
    # The render applies it only in training mode, to the share asked.
    assert SpaceTimeRender(SpaceTimeModel("small", "band"), 0.5).thin_lines == 0.5


def test_thin_lines_must_be_a_share(tmp_path):
    with pytest.raises(UserError, match="spacetime.data.thin_lines=1.5"):
        SpaceTimeTrainer(config(["experiment=spacetime_small", "spacetime.data.thin_lines=1.5"]
                                + SMALL), tmp_path / "run", torch.device("cpu"))
