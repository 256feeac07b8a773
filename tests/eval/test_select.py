import csv
import logging

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.eval.compare import main as compare_main
from cinemagraph.eval.select import main as select_main
from cinemagraph.eval.select import gain_se, pick, weight_files
from cinemagraph.spacetime import OWN_WEIGHTS, SpaceTimeModel, save_spacetime

from .scenes import tiny_scenes


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("validation"), "train")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A training run's folder with two checkpoints: at step 10 the untrained residual preset
    (it renders as the built-in decoder does), at step 2 the official preset with noisy
    weights (its decoder makes the whole frame, frame 0 too; a residual preset's rules keep
    frame 0 the photo)."""
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    save_spacetime(SpaceTimeModel("small"), root / "checkpoints" / "step_0000010.safetensors")
    noisy = SpaceTimeModel("official")
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_spacetime(noisy, root / "checkpoints" / "step_0000002.safetensors")
    return root


def _rows(path):
    with open(path, newline="") as f:
        return {r["weights"]: r for r in csv.DictReader(f)}


def test_the_pick_is_the_best_validation_psnr_and_scores_as_the_comparison_does(
        validation, run, tmp_path, monkeypatch, capsys, caplog):
    out = tmp_path / "select.csv"
    assert select_main([str(run), "--data", str(validation), "--device", "cpu",
                        "--out", str(out)]) == 0
    rows = _rows(out)
    good = str(run / "checkpoints" / "step_0000010.safetensors")
    bad = str(run / "checkpoints" / "step_0000002.safetensors")
    assert list(rows) == ["builtin", bad, good]  # the built-in decoder, then step order
    assert rows[good]["picked"] == "1" and rows[bad]["picked"] == "0"
    assert float(rows[bad]["psnr"]) < float(rows[good]["psnr"]) - 3
    assert float(rows[good]["gain_se"]) < 1e-6 < float(rows[bad]["gain_se"])
    printed = capsys.readouterr().out
    assert "**picked**" in printed and "± " in printed  # the gain with its standard error
    # The table and every row name the machine and libraries that computed them.
    assert "\nComputed on: CPU " in printed and "torch " in printed
    assert {r["computed_on"] for r in rows.values()} == {
        printed.split("Computed on: ")[1].split("\n")[0].rstrip(".")}
    # The untrained residual preset renders as the built-in decoder does.
    assert float(rows[good]["psnr"]) == pytest.approx(float(rows["builtin"]["psnr"]), abs=1e-6)
    # The same numbers as the comparison gives the weights it finds by default.
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / OWN_WEIGHTS).write_bytes((run / "checkpoints" / "step_0000002.safetensors")
                                               .read_bytes())
    monkeypatch.setenv("CINEMAGRAPH_WEIGHTS", str(tmp_path / "w"))
    caplog.set_level(logging.INFO, logger="cinemagraph.eval.compare")
    assert compare_main(["--data", str(validation), "--split", "train", "--methods",
                         "ours-learned", "--out", str(tmp_path / "cmp"), "--device", "cpu"]) == 0
    # The log names the weights that were scored.
    assert "ours-learned: learned feature network + image decoder" in caplog.text
    assert str(tmp_path / "w" / OWN_WEIGHTS) in caplog.text
    with open(tmp_path / "cmp" / "per_scene.csv", newline="") as f:
        scenes = list(csv.DictReader(f))
    assert float(rows[bad]["psnr"]) == pytest.approx(
        sum(float(r["psnr"]) for r in scenes) / len(scenes), abs=1e-9)
    # Not overwritten without --overwrite, and nothing scored before saying so.
    assert select_main([str(run), "--data", str(validation), "--device", "cpu",
                        "--out", str(out)]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err


def test_a_frame0_limit_leaves_weights_out_and_none_left_is_an_exit_of_1(validation, run, capsys):
    good = str(run / "checkpoints" / "step_0000010.safetensors")
    bad = str(run / "checkpoints" / "step_0000002.safetensors")
    assert select_main([bad, "--data", str(validation), "--device", "cpu",
                        "--max-frame0-window", "1"]) == 1
    assert "no weights qualify" in capsys.readouterr().err
    assert select_main([bad, good, "--data", str(validation), "--device", "cpu",
                        "--max-frame0-window", "1", "--scenes", "1"]) == 0


def test_pick_prefers_psnr_then_ssim_among_the_eligible():
    rows = [{"weights": "a", "psnr": 25.0, "ssim": 0.80, "frame0_window": 9.0,
             "photo_change": 0.0},
            {"weights": "b", "psnr": 24.0, "ssim": 0.90, "frame0_window": 0.5,
             "photo_change": 0.0},
            {"weights": "c", "psnr": 24.0, "ssim": 0.95, "frame0_window": 0.5,
             "photo_change": 4.0}]
    assert pick(rows)["weights"] == "a"
    assert pick(rows, max_frame0_window=1.0)["weights"] == "c"
    assert pick(rows, max_frame0_window=1.0, max_photo_change=1.0)["weights"] == "b"
    assert pick(rows, max_photo_change=5.0)["weights"] == "a"
    assert pick(rows, max_frame0_window=0.1) is None


def _photo(folder):
    import imageio.v3 as iio
    import numpy as np

    folder.mkdir()
    y, x = np.mgrid[0:48, 0:64]
    iio.imwrite(folder / "image.png", np.stack([x * 4, y * 5, x + y], -1).astype(np.uint8))
    return folder


def test_photo_boxes_are_measured_for_each_weight_file_and_can_leave_weights_out(
        validation, run, tmp_path, capsys):
    photo = _photo(tmp_path / "photo")
    good = str(run / "checkpoints" / "step_0000010.safetensors")
    bad = str(run / "checkpoints" / "step_0000002.safetensors")
    out = tmp_path / "select.csv"
    common = ["--data", str(validation), "--device", "cpu", "--scenes", "1",
              "--photo-box", f"{photo}=0,0,64,48", "--photo-box", f"{photo}=8,8,24,24",
              "--photo-cameras", "zoom-in", "--photo-size", "64", "--photo-frames", "4"]
    assert select_main([bad, good, *common, "--out", str(out)]) == 0
    rows = _rows(out)
    box = "photo@zoom-in=0,0,64,48"
    assert set(rows[good]) >= {"photo_change", box, "photo@zoom-in=8,8,24,24"}
    assert float(rows[good]["photo_change"]) < 1e-6 < 1.0 < float(rows[bad]["photo_change"])
    # The box's channels are written to 3 decimals.
    assert (max(abs(float(v)) for v in rows[bad][box].split())
            <= float(rows[bad]["photo_change"]) + 5e-4)
    assert "photo change" in capsys.readouterr().out
    # A limit the noisy weights pass nowhere leaves them out, and no weights left is exit 1.
    assert select_main([bad, *common, "--max-photo-change", "1"]) == 1
    assert "no weights qualify" in capsys.readouterr().err
    # A limit needs boxes; a malformed box is refused before anything runs.
    assert select_main([good, "--data", str(validation), "--max-photo-change", "1"]) == 2
    assert "needs the boxes" in capsys.readouterr().err
    assert select_main([good, "--data", str(validation), "--photo-mirror"]) == 2
    assert "--photo-mirror needs the boxes" in capsys.readouterr().err
    # The mirrored photo's boxes are columns of their own.
    mirrored = tmp_path / "mirrored.csv"
    assert select_main([bad, *common, "--photo-mirror", "--out", str(mirrored)]) == 0
    row = _rows(mirrored)[bad]
    assert {box, "photo@zoom-in+mirror=0,0,64,48", "photo@zoom-in+mirror=8,8,24,24"} <= set(row)
    assert row[box] == rows[bad][box]  # the photo itself measures as before
    assert float(row["photo_change"]) >= float(rows[bad]["photo_change"])
    with pytest.raises(SystemExit):
        select_main([good, "--data", str(validation), "--photo-box", "photo=1,2,3"])
    assert "--photo-box 'photo=1,2,3'" in capsys.readouterr().err


def test_weight_files_expand_folders_in_step_order_and_name_what_is_wrong(tmp_path):
    for name in ("step_0000100.safetensors", "step_0000020.safetensors", "step_0000020.pt"):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / name).write_bytes(b"")
    (tmp_path / "model_150000.pth").write_bytes(b"")
    (tmp_path / "run_2026-11-30_crack9.safetensors").write_bytes(b"")  # no step: first
    (tmp_path / "notes.txt").write_text("")
    found = weight_files([tmp_path])
    assert [f.name for f in found] == ["run_2026-11-30_crack9.safetensors",
                                       "step_0000020.safetensors", "step_0000100.safetensors",
                                       "model_150000.pth"]
    assert weight_files([found[2], tmp_path]) == [found[2], found[0], found[1], found[3]]
    with pytest.raises(UserError, match="not a weight file"):
        weight_files([tmp_path / "notes.txt"])
    with pytest.raises(UserError, match="does not exist"):
        weight_files([tmp_path / "nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no weight files in"):
        weight_files([tmp_path / "empty"])


def test_a_corrupt_weight_file_is_a_one_line_error(validation, tmp_path, capsys):
    broken = tmp_path / "step_0000001.safetensors"
    broken.write_bytes(b"not a safetensors file")
    assert select_main([str(broken), "--data", str(validation), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read") and "\n" not in err


def test_the_gains_standard_error_is_over_the_scenes_both_score():
    before = {"a": 20.0, "b": 21.0, "c": 22.0, "d": 30.0}
    after = {"a": 21.0, "b": 23.0, "c": 25.0}  # gains 1, 2, 3; d not scored
    assert gain_se(before, after) == pytest.approx(1.0 / 3 ** 0.5)
    assert gain_se(before, {"a": 25.0}) != gain_se(before, {"a": 25.0})  # one scene: NaN


def test_selection_reads_the_validation_split_by_default():
    from cinemagraph.eval.select import build_parser

    assert build_parser().parse_args(["w.safetensors", "--data", "d"]).split == "val"



def test_learned_weights_load_once_per_device_however_it_is_spelled(run, monkeypatch):
    from cinemagraph.eval import methods
    from cinemagraph import spacetime

    loads, load = [], spacetime.learned_components

    def counted(path, device=None, **kw):
        loads.append(str(device))
        return load(path, device, **kw)

    monkeypatch.setattr(spacetime, "learned_components", counted)
    monkeypatch.setattr(methods, "_LEARNED", {})
    weights = run / "checkpoints" / "step_0000010.safetensors"
    # The comparison names its device as given ("cpu:0", "cuda"); a frame's tensors name it
    # as torch does ("cpu", "cuda:0"): one load for both.
    first = methods._learned_components("cpu:0", weights)
    second = methods._learned_components(torch.device("cpu"), weights)
    assert loads == ["cpu:0"] and first.decoder is second.decoder
