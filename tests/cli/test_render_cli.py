"""The command line: a real MP4 with the asked frames, and one-line errors for bad input."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from cinemagraph.cli.render import main

W, H = 64, 48


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.random((H // 4, W // 4, 3)) * 255).astype(np.uint8).repeat(4, 0).repeat(4, 1)
    path = tmp_path / "photo.png"
    iio.imwrite(path, image)
    return path


def run_cli(args, capsys):
    code = main([str(a) for a in args] + ["-q"])
    err = capsys.readouterr().err.strip()
    return code, err


def test_cli_writes_an_mp4_with_exactly_the_asked_frames(photo, tmp_path, capsys):
    code, err = run_cli([photo, "--camera", "circle", "--frames", "7", "--fps", "10",
                         "--hint", "20,20,30,25", "--device", "cpu"], capsys)
    assert code == 0, err
    out = tmp_path / "photo_circle.mp4"
    frames = iio.imread(out)
    assert frames.shape == (7, H, W, 3)
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_gif_frames_and_debug_pictures(photo, tmp_path, capsys):
    out = tmp_path / "o.gif"
    code, err = run_cli([photo, "--camera", "side", "--frames", "3", "-o", out,
                         "--save-frames", tmp_path / "frames", "--save-debug", tmp_path / "dbg"],
                        capsys)
    assert code == 0, err
    assert iio.imread(out).shape[0] == 3
    assert len(list((tmp_path / "frames").glob("*.png"))) == 3
    assert {"depth.png", "motion.png", "layer_0.png"} <= {p.name for p in (tmp_path / "dbg").iterdir()}


def test_existing_output_is_kept_without_overwrite(photo, tmp_path, capsys):
    out = tmp_path / "photo_static.mp4"
    out.write_bytes(b"keep me")
    code, err = run_cli([photo, "--camera", "static", "--frames", "2"], capsys)
    assert code == 2 and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    code, err = run_cli([photo, "--camera", "static", "--frames", "2", "--overwrite"], capsys)
    assert code == 0 and out.read_bytes() != b"keep me"


def bad_inputs(tmp_path, photo):
    """(arguments, fragment of the expected message) for each kind of bad input."""
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    tiny = tmp_path / "tiny.png"
    iio.imwrite(tiny, np.zeros((1, 1, 3), np.uint8))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    mask = tmp_path / "mask.png"
    iio.imwrite(mask, np.zeros((10, 10), np.uint8))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{oops")
    nan_depth = tmp_path / "nan.npy"
    np.save(nan_depth, np.full((H, W), np.nan))
    bad_path = tmp_path / "path.json"
    bad_path.write_text(json.dumps({"keyframes": [{"time": 0}]}))
    return [
        ([tmp_path / "missing.jpg"], "does not exist"),
        ([not_image], "not a picture"),
        ([empty], "not a picture"),
        ([tiny], "at least 8x8"),
        ([photo, "--mask", mask, "--hint", "1,1,5,5"], "image's size"),
        ([photo, "--hint", "500,1,510,1"], "starts outside"),
        ([photo, "--hint", "5,5,5,5"], "zero length"),
        ([photo, "--motion", bad_json], "not valid JSON"),
        ([photo, "--hints", bad_json], "not valid JSON"),
        ([photo, "--depth", nan_depth], "finite positive"),
        ([photo, "--camera", "spiral"], "unknown camera"),
        ([photo, "--camera", bad_path], "'time' and 'position'"),
        ([photo, "-o", tmp_path / "nowhere" / "v.mp4"], "does not exist"),
        ([photo, "-o", tmp_path / "v.avi"], "must end in .mp4 or .gif"),
        ([photo, "--frames", "0"], "at least 1 frame"),
        ([photo, "--decoder-weights", tmp_path / "none.safetensors"],
         "does not exist: give a weight file"),
        ([photo, "--decoder", "builtin", "--decoder-weights", not_image], "uses no weights"),
        ([photo, "--decoder-size", "8"], "give 32 pixels or more"),
    ]


def test_each_bad_input_gets_a_one_line_error_and_no_output(photo, tmp_path, capsys):
    for args, message in bad_inputs(tmp_path, photo):
        before = set(tmp_path.rglob("*"))
        code, err = run_cli(list(args) + ["--frames", "2"] if "--frames" not in args else args,
                            capsys)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and "\n" not in err, (args, err)
        assert message in err, (args, err)
        assert set(tmp_path.rglob("*")) == before, args  # nothing written


def test_cuda_asked_where_there_is_none(photo, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    code, err = run_cli([photo, "--device", "cuda"], capsys)
    assert code == 2 and "CUDA is not available" in err


def test_unwritable_output_directory(photo, tmp_path, capsys):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, err = run_cli([photo, "-o", locked / "v.mp4"], capsys)
        assert code == 2 and "not writable" in err
    finally:
        locked.chmod(0o700)


def test_real_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cinemagraph.render", str(tmp_path / "x.jpg")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
