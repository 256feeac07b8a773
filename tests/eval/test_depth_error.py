"""The depth prior's scale-invariant error against the synthetic scenes' exact depth."""

import csv

import numpy as np

from cinemagraph.eval.depth_error import main, scale_invariant_error

from .scenes import tiny_scenes


def test_the_error_ignores_scale_and_sees_shape():
    exact = np.linspace(1.0, 10.0, 100)
    assert scale_invariant_error(3.0 * exact, exact) < 1e-6
    assert scale_invariant_error(np.ones(100), exact) > 0.5


def test_the_command_scores_every_scene_and_keeps_its_csv(tmp_path, capsys):
    data = tiny_scenes(tmp_path / "data", "val")
    out = tmp_path / "errors.csv"
    assert main([str(data), "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "si_not_sky:" in printed and "2 scenes" in printed
    rows = list(csv.DictReader(out.open()))
    assert [r["scene"] for r in rows] == ["scene_00000", "scene_00001"]
    assert all(float(r["si_not_sky"]) > 0 for r in rows)
    assert main([str(data), "--csv", str(out)]) == 2  # exists: needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([str(tmp_path / "none")]) == 2
    assert "no synthetic scenes" in capsys.readouterr().err
    assert main([str(data), "--scenes", "-1"]) == 2
    assert "--scenes -1" in capsys.readouterr().err
    assert main([str(data), "--csv", str(tmp_path / "missing" / "e.csv")]) == 2
    assert "folder that exists" in capsys.readouterr().err
    (data / "val" / "scene_00001" / "depth.npy").unlink()
    assert main([str(data)]) == 2
    assert "cannot be read" in capsys.readouterr().err
