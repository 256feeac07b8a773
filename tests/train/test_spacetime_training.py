"""Training of the feature network and decoder: every experiment for two CPU steps, the
decoder's rules set from the config, two data-parallel processes (gloo) ending with identical
weights, the training samples, the losses, the moving average and resuming. The networks,
their rules and weight files are tested in ``tests/spacetime``."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.spacetime import DecodeRules, SpaceTimeModel, load_spacetime, save_spacetime
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
    if cfg.spacetime.model.preset != "official" and cfg.spacetime.model.fluid_px == 0:
        # Without the fluid band, the tiny scenes' corrections reach few pixels: the feature
        # network's first gradients are small, and its weights move by step 6 where every
        # sample has floaters (near occluders, whose holes the correction reaches).
        extra += ["trainer.steps=6", "spacetime.data.floaters=1.0"]
    return extra


@pytest.mark.parametrize("experiment", SPACETIME)
def test_every_spacetime_experiment_runs_two_steps(experiment, tmp_path):
    # The residual decoder's last convolution starts at zero: the feature network's first
    # gradient comes in the second step, and only where the rules let the correction
    # through. Samples of both kinds at once have moving points (the fluid band) and a
    # moving camera (holes) in every frame; a static novel view may have neither.
    cfg = config([f"experiment={experiment}", "trainer.steps=2", "spacetime.data.kinds=[both]"]
                 + SMALL + _alone(experiment))
    trainer = SpaceTimeTrainer(cfg, tmp_path, torch.device("cpu"))
    if trainer.model.residual:  # the rules the config names (its defaults: the shipped ones)
        m = cfg.spacetime.model
        assert trainer.model.rules == DecodeRules(band_px=m.band_px, crack_px=m.crack_px,
                                                  fluid_px=m.fluid_px, fluid_rule=m.fluid_rule,
                                                  fluid_border=m.fluid_border)
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
    assert loaded.rules == trainer.model.rules  # None for the official preset
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


def test_the_config_sets_the_decoders_rules_and_weights_to_start_from_take_them(tmp_path, caplog):
    import logging

    from cinemagraph.spacetime import SpaceTimeEnsemble, save_ensemble

    start = SpaceTimeModel("small", DecodeRules(band_px=9, crack_px=9, fluid_px=0))
    torch.nn.init.normal_(start.img_decoder.outc.conv.weight, std=0.05)
    save_spacetime(start, tmp_path / "start.safetensors", half=False)
    init = ["experiment=spacetime_small", f"spacetime.model.init={tmp_path / 'start.safetensors'}"]
    rules = ["spacetime.model.band_px=15", "spacetime.model.crack_px=7",
             "spacetime.model.fluid_px=31", "spacetime.model.fluid_rule=free",
             "spacetime.model.fluid_border=true"]
    with caplog.at_level(logging.INFO, logger="cinemagraph.train"):
        trainer = SpaceTimeTrainer(config(init + rules + SMALL), tmp_path / "run",
                                   torch.device("cpu"))
    assert trainer.model.rules == DecodeRules(band_px=15, crack_px=7, fluid_px=31,
                                              fluid_rule="free", fluid_border=True)
    assert "the decoder's rules: band 9 px, cracks 9 px -> band 15 px, cracks 7 px, " \
           "fluid 31 px" in caplog.text
    for k, v in start.state_dict().items():  # the file's weights, under the config's rules
        assert torch.equal(trainer.model.state_dict()[k], v), k
    same = ["spacetime.model.band_px=9", "spacetime.model.fluid_px=0"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cinemagraph.train"):
        kept = SpaceTimeTrainer(config(init + same + SMALL), tmp_path / "kept",
                                torch.device("cpu"))
    assert kept.model.rules == start.rules and "the decoder's rules" not in caplog.text
    # Rules this code cannot apply are refused, named.
    for over, named in [("fluid_rule=between", "fluid_rule 'between'"),
                        ("crack_px=0", "crack_px 0"), ("fluid_px=-1", "fluid_px -1")]:
        with pytest.raises(UserError, match=f"spacetime.model: {named}"):
            SpaceTimeTrainer(config(init + [f"spacetime.model.{over}"] + SMALL),
                             tmp_path / "bad", torch.device("cpu"))
    # Weights of another preset, or an output ensemble, are not a start to train on.
    with pytest.raises(UserError, match="holds the 'small' preset, not 'base'"):
        SpaceTimeTrainer(config(init + ["model=base"] + SMALL), tmp_path / "base",
                         torch.device("cpu"))
    pair = SpaceTimeEnsemble([load_spacetime(tmp_path / "start.safetensors")] * 2, [1, 1])
    save_ensemble(pair, tmp_path / "pair.safetensors")
    with pytest.raises(UserError, match="is an output ensemble"):
        SpaceTimeTrainer(config(["experiment=spacetime_small",
                                 f"spacetime.model.init={tmp_path / 'pair.safetensors'}"] + SMALL),
                         tmp_path / "pair", torch.device("cpu"))


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


def _data(**kw):
    from omegaconf import OmegaConf

    from cinemagraph.train.config import SpaceTimeDataConfig

    base = dict(scenes=3, size=[48, 64], frames=8)
    return OmegaConf.structured(SpaceTimeDataConfig(**{**base, **kw}))


def test_a_planned_view_splats_as_the_render():
    from cinemagraph.render.features import RGBDisparityFeatures
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
    # Samples of both kinds: moving points and holes, where the correction learns from the
    # first steps (module's two-step test).
    cfg = config(["experiment=spacetime_small", "trainer.steps=2", "trainer.checkpoint_every=1",
                  "spacetime.model.ema=0.75", "spacetime.data.kinds=[both]"] + SMALL)
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
