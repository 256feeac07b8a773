"""Where a decoder gains: the frame's regions and the squared error summed over them."""

import csv
import math

import pytest
import torch

from cinemagraph.eval import metrics
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import MethodInput, ours
from cinemagraph.eval.regions import REGIONS, main, region_errors, region_masks, table
from cinemagraph.render.decode import SplattedFrame
from cinemagraph.spacetime import DecodeRules, SpaceTimeModel, save_spacetime
from cinemagraph.motion.field import MotionField

from .scenes import tiny_scenes


def test_regions_split_a_frame_by_where_its_points_come_from():
    alpha = torch.ones(1, 1, 8, 10)
    shift = torch.zeros(1, 2, 8, 10)
    shift[0, 1, 6:] = -3.0  # the bottom rows show points from 3 rows further down
    shift[0, 0, :, :2] = 0.4  # under half a pixel: inside
    moving = torch.zeros(1, 1, 8, 10)
    moving[..., :3, 5:] = 1.0
    frame = SplattedFrame(torch.ones(1, 4, 8, 10), alpha, torch.ones(1, 1, 8, 10), shift, moving)
    border, fluid, static = region_masks(frame, None)
    assert border[6:].all() and not border[:6].any()
    assert fluid[:3, 5:].all() and fluid.sum() == 15
    assert torch.equal(border | fluid | static, torch.ones(8, 10, dtype=torch.bool))
    assert not (border & static).any() and not (fluid & static).any()
    # The backward frame's moving points count too, under half the opacity does not.
    still = frame._replace(moving=torch.zeros_like(moving))
    assert torch.equal(region_masks(still, frame)[1], fluid)
    assert not region_masks(frame._replace(alpha=alpha * 0.4), None)[1].any()
    with pytest.raises(ValueError, match="displacement"):
        region_masks(frame._replace(displacement=None), None)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("regions"), "train")


def test_the_regions_hold_every_pixel_and_the_whole_error(scenes, tmp_path, capsys):
    torch.manual_seed(0)
    untrained = tmp_path / "untrained.safetensors"  # renders as the built-in decoder
    save_spacetime(SpaceTimeModel("small", DecodeRules(band_px=9, crack_px=9, fluid_px=0)),
                   untrained, half=False)
    noisy = SpaceTimeModel("small")  # the shipped rules: the correction near holes and fluid
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_spacetime(noisy, tmp_path / "noisy.safetensors", half=False)
    files = [untrained, tmp_path / "noisy.safetensors"]
    result = region_errors(scenes, files)
    # Every valid pixel of every frame in one region; the regions' errors add up to the
    # built-in decoder's whole squared error as the comparison computes it.
    count, total = 0, 0.0
    for folder in scene_folders(scenes):
        scene = load_scene(folder)
        motion = MotionField(scene.flow, scene.mask)
        for name, path in scene.paths.items():
            with torch.no_grad():
                frames = ours(MethodInput(scene.image, scene.depth, motion, path, scene.K))
            valid = scene.valid[name].bool()
            count += 3 * int(valid.sum())
            total += sum(metrics.mse(frames[t], scene.frames[name][t], valid[t])
                         * 3 * int(valid[t].sum()) for t in range(len(frames)))
    assert sum(result["pixels"].values()) == count
    assert math.isclose(sum(result["sse"]["builtin"].values()), total, rel_tol=1e-6)
    assert result["sse"][str(untrained)] == pytest.approx(result["sse"]["builtin"], rel=1e-6)
    assert sum(result["sse"][str(files[1])].values()) != pytest.approx(total, rel=1e-3)
    rows = {(r["method"], r["region"]): r for r in table(result)}
    assert sum(rows[("builtin", r)]["pixel_share"] for r in REGIONS) == pytest.approx(1.0)
    shares = [rows[(str(files[1]), r)]["reduction_share"] for r in REGIONS]
    assert sum(s for s in shares if not math.isnan(s)) == pytest.approx(1.0)
    # The command: a table, a CSV, nothing overwritten unless asked.
    out = tmp_path / "regions.csv"
    assert main([str(untrained), "--data", str(scenes), "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| untrained.safetensors | border |" in printed
    assert out.read_text().splitlines()[0].startswith("method,region,pixel_share,psnr")
    # What computed the numbers is named, in the table and in every row.
    where = printed.split("Computed on: ")[1].split("\n")[0].rstrip(".")
    assert where.startswith("CPU ") and "torch " in where
    with open(out, newline="") as f:
        assert {r["computed_on"] for r in csv.DictReader(f)} == {where}
    assert main([str(untrained), "--data", str(scenes), "--device", "cpu", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([str(tmp_path / "none.safetensors"), "--data", str(scenes)]) == 2
    assert "is not a file" in capsys.readouterr().err
