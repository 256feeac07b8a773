"""benchmarks/decoder_blend.py: blends of two decoders' frames, scored as the comparison scores."""

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

from cinemagraph.eval import metrics
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import METHODS, MethodInput
from cinemagraph.models.spacetime import SpaceTimeModel, save_spacetime
from cinemagraph.motion.field import MotionField

from .scenes import tiny_scenes

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decoder_blend.py"


def _script():
    spec = importlib.util.spec_from_file_location("decoder_blend", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("blend"), "val")


def test_blends_score_the_frames_mixed_and_the_ends_are_the_two_decoders(scenes, tmp_path,
                                                                         capsys):
    torch.manual_seed(0)
    noisy = SpaceTimeModel("small", correction="everywhere")
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    weights = tmp_path / "noisy.safetensors"
    save_spacetime(noisy, weights, half=False)
    blend = _script()
    rows = blend.blend_scores(scenes, "builtin", str(weights), [0.0, 0.5, 1.0], None, None, 0,
                              torch.device("cpu"))
    got = {(r["scene"], r["blend"]): r["psnr"] for r in rows}
    for folder in scene_folders(scenes):  # the ends, and the middle, computed here
        scene = load_scene(folder)
        motion = MotionField(scene.flow, scene.mask)
        errors = {"builtin": [], "learned": [], "half": []}
        for name, path in scene.paths.items():
            with torch.no_grad():
                a = METHODS["ours"](MethodInput(scene.image, scene.depth, motion, path, scene.K))
                b = METHODS["ours-learned"](MethodInput(scene.image, scene.depth, motion, path,
                                                        scene.K, weights))
            for key, video in (("builtin", a), ("learned", b), ("half", (a + b) / 2)):
                errors[key] += [metrics.mse(video[t], scene.frames[name][t], scene.valid[name][t])
                                for t in range(len(video))]
        psnr = {k: metrics.psnr_of_mse(v) for k, v in errors.items()}
        assert got[(scene.name, "builtin")] == pytest.approx(psnr["builtin"])
        assert got[(scene.name, "0")] == pytest.approx(psnr["builtin"])
        assert got[(scene.name, "1")] == pytest.approx(psnr["learned"])
        assert got[(scene.name, "0.5")] == pytest.approx(psnr["half"])
        assert psnr["learned"] != pytest.approx(psnr["builtin"], abs=0.01)  # they differ
    # The command: a table, a CSV, nothing overwritten, one-line errors.
    out = tmp_path / "blend.csv"
    argv = [str(scenes), "builtin", str(weights), "--weights", "0.5", "--cameras", "",
            "--device", "cpu", "--out", str(out)]
    assert blend.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 0.5 |" in printed
    written = list(csv.DictReader(out.open()))
    assert [r["blend"] for r in written][:2] == ["builtin", "0.5"]
    # What computed the numbers is named, in the table and in every row.
    where = printed.split("Computed on: ")[1].split("\n")[0].rstrip(".")
    assert where.startswith("CPU ") and "torch " in where
    assert {r["computed_on"] for r in written} == {where}
    assert blend.main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert blend.main([str(scenes), "builtin", str(tmp_path / "none.safetensors")]) == 2
    assert "is not a weight file" in capsys.readouterr().err
    assert blend.main([str(tmp_path / "empty"), "builtin", "builtin", "--device", "cpu"]) == 2
    assert "no synthetic scenes" in capsys.readouterr().err
