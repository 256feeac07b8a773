"""The real photos under ../shared/samples (skipped where they are absent)."""

import imageio.v3 as iio

from cinemagraph.cli.render import main
from cinemagraph.motion import read_labelme

from conftest import shared_path


def test_waterfall_labelme_file_parses_to_a_mask_and_hints():
    folder = shared_path("samples", "waterfall0")
    hints = read_labelme(folder / "image.json", (720, 1280))
    assert len(hints) == 5
    reference = iio.imread(folder / "mask.png") > 0
    agreement = (hints.mask[0, 0].numpy() == reference).mean()
    assert agreement > 0.97


def test_waterfall_renders_small(tmp_path, capsys):
    folder = shared_path("samples", "waterfall0")
    out = tmp_path / "w.mp4"
    code = main([str(folder / "image.png"), "--motion", str(folder / "image.json"),
                 "--camera", "zoom-in", "--frames", "4", "--max-size", "320", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    assert iio.imread(out).shape == (4, 180, 320, 3)


def test_astronaut_depth_file_is_read_as_disparity(caplog):
    import logging

    from cinemagraph.depth import load_depth_file

    folder = shared_path("samples", "astronaut_moon")
    with caplog.at_level(logging.INFO):
        depth = load_depth_file(folder / "depth.png", (64, 64))
    assert "disparity" in caplog.text
    assert depth[0, 0, -1].mean() < depth[0, 0, 0].mean()  # the ground in front is nearer
