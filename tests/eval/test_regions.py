"""Where one method differs from another: the frame's regions and the squared error
summed over them."""

import csv
import math

import pytest
import torch

from cinemagraph.api import PreparedScene, RenderOptions
from cinemagraph.conventions import default_intrinsics
from cinemagraph.render.camera import named_path
from cinemagraph.eval import metrics
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import MethodInput, _border, naive_point_cloud_symmetric, ours
from cinemagraph.eval.regions import REGIONS, main, point_origins, region_errors, region_masks, table
from cinemagraph.motion.field import MotionField

from .scenes import tiny_scenes


def test_regions_split_a_frame_by_where_its_points_come_from():
    h, w = 32, 48
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    depth = torch.full((1, 1, h, w), 4.0)
    depth[..., 8:24, 12:30] = 1.0  # a near box: the camera reveals what it hides
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0, 26:] = 0.5  # the bottom rows flow sideways
    mask = torch.zeros(1, 1, h, w, dtype=torch.bool)
    mask[..., 26:, :] = True
    prepared = PreparedScene.of(image, depth, MotionField(flow, mask),
                                RenderOptions(reframe=False))
    # Sideways by three times the named path's amplitude: a few pixels past the edges.
    path = named_path("side", 6, default_intrinsics(h, w)[0], near=3.0)
    scene = prepared.scene(path)
    origins = point_origins(scene)
    assert origins[:, 0].any() and origins[:, 1].any() and origins[:, 2].any()
    masks = region_masks(scene, path, (h, w))
    assert masks.shape == (6, 4, h, w)
    assert torch.equal(masks.sum(1), torch.ones(6, h, w, dtype=torch.long))
    outside, disoccluded, fluid, static = masks.unbind(1)
    # Frame 0 is the photo: nothing from outside or revealed.
    assert not outside[0].any() and not disoccluded[0].any()
    assert fluid[0, 27:].all() and not fluid[0, :20].any()
    # Sideways, the side path shows past the left or right edge, and beside the box.
    assert outside[1:].any() and disoccluded[1:].any()
    assert not outside[:, 10:20, w // 2 - 4:w // 2 + 4].any()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("regions"), "train")


def test_the_regions_hold_every_pixel_and_the_whole_error(scenes, tmp_path, capsys):
    methods = ["naive-pc-sym", "ours", "ours-no-border"]
    result = region_errors(scenes, methods)
    # Every valid pixel of every frame in one region; the regions' errors add up to the
    # whole squared error as the comparison computes it, and so do the per-scene PSNRs; the
    # regions' SSIM sums add up to the frames' mean SSIM, and the per-scene SSIMs are the
    # comparison's.
    for method, fn in (("ours", ours), ("naive-pc-sym", naive_point_cloud_symmetric)):
        count, total, psnrs, ssim_total, ssims = 0, 0.0, [], 0.0, []
        for folder in scene_folders(scenes):
            scene = load_scene(folder)
            motion = MotionField(scene.flow, scene.mask)
            mses, frame_ssims = [], []
            for name, path in scene.paths.items():
                with torch.no_grad():
                    frames = fn(MethodInput(scene.image, scene.depth, motion, path, scene.K))
                valid = scene.valid[name].bool()
                count += 3 * int(valid.sum())
                mses += [metrics.mse(frames[t], scene.frames[name][t], valid[t])
                         for t in range(len(frames))]
                total += sum(m * 3 * int(valid[t].sum()) for t, m in enumerate(mses[-len(frames):]))
                for t in range(len(frames)):
                    frame_ssims.append(metrics.ssim(frames[t], scene.frames[name][t], valid[t]))
                    ssim_total += frame_ssims[-1] * int(valid[t].sum())
            psnrs.append(metrics.psnr_of_mse(mses))
            ssims.append(metrics.mean(frame_ssims))
        assert sum(result["pixels"].values()) == count
        assert math.isclose(sum(result["sse"][method].values()), total, rel_tol=1e-6)
        assert result["scene_psnr"][method] == pytest.approx(psnrs, abs=1e-9)
        assert math.isclose(sum(result["ssim"][method].values()), ssim_total, rel_tol=1e-9)
        assert result["scene_ssim"][method] == pytest.approx(ssims, abs=1e-12)
    # Each region's SSIM sum is that region's own: the SSIM map summed over its pixels.
    by_region = dict.fromkeys(REGIONS, 0.0)
    for folder in scene_folders(scenes):
        scene = load_scene(folder)
        motion = MotionField(scene.flow, scene.mask)
        for name, path in scene.paths.items():
            inp = MethodInput(scene.image, scene.depth, motion, path, scene.K)
            with torch.no_grad():
                made = PreparedScene.of(scene.image, scene.depth, motion,
                                        border=_border(inp)).scene(path)
                masks = (region_masks(made, path, tuple(scene.image.shape[-2:]))
                         & scene.valid[name][:, None].bool())
                frames = ours(inp)
            for t in range(len(frames)):
                smap = metrics.ssim_map(frames[t], scene.frames[name][t])
                for i, region in enumerate(REGIONS):
                    by_region[region] += float(smap[masks[t, i]].sum())
    assert result["ssim"]["ours"] == pytest.approx(by_region, rel=1e-9)
    rows = {(r["method"], r["region"]): r for r in table(result, "naive-pc-sym")}
    assert sum(rows[("ours", r)]["pixel_share"] for r in REGIONS) == pytest.approx(1.0)
    shares = [rows[("ours", r)]["difference_share"] for r in REGIONS]
    assert sum(s for s in shares if not math.isnan(s)) == pytest.approx(1.0)
    ssim_shares = [rows[("ours", r)]["ssim_difference_share"] for r in REGIONS]
    assert sum(s for s in ssim_shares if not math.isnan(s)) == pytest.approx(1.0)
    n = {r: result["pixels"][r] // 3 for r in REGIONS}
    assert all(rows[("ours", r)]["ssim"] == pytest.approx(result["ssim"]["ours"][r] / n[r])
               for r in REGIONS if n[r])
    assert all(math.isnan(rows[("naive-pc-sym", r)]["difference_share"]) for r in REGIONS)
    # The command: a table, a CSV, nothing overwritten unless asked.
    out = tmp_path / "regions.csv"
    argv = ["--data", str(scenes), "--methods", "naive-pc-sym,ours", "--device", "cpu",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| ours | outside |" in printed and "against naive-pc-sym" in printed
    assert "| Ours | " in printed and " +- " in printed
    assert "share of the SSIM difference" in printed
    assert out.read_text().splitlines()[0].startswith("method,region,pixel_share,psnr,gap")
    # What computed the numbers is named, in the table and in every row.
    where = printed.split("Computed on: ")[1].split("\n")[0].rstrip(".")
    assert where.startswith("CPU ") and "torch " in where
    with open(out, newline="") as f:
        assert {r["computed_on"] for r in csv.DictReader(f)} == {where}
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["--data", str(scenes), "--methods", "ours,nonsense"]) == 2
    assert "unknown method" in capsys.readouterr().err
