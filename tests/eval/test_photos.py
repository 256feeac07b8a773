"""Boxes of real photos that must not change (cinemagraph.eval.photos): parsing, the signed
mean over a box, and the renders behind ``select --photo-box`` and the contact sheet."""

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.eval.photos import DEPTH_FILE, HINTS_FILE, PhotoCheck, box_change, parse_box, render_photo
from cinemagraph.spacetime import SpaceTimeModel, save_spacetime

BAD = ("170,175,195,200", "a=1,2,3", "a=5,0,5,4", "a=0,4,3,1", "a=x,0,1,1", "=0,0,1,1")


def test_a_box_is_parsed_and_bad_ones_are_refused():
    assert parse_box("astronaut_moon=170,175,195,200") == ("astronaut_moon", (170, 175, 195, 200))
    assert parse_box("runs/a=b/photo=1,2,3,4") == ("runs/a=b/photo", (1, 2, 3, 4))
    for bad in BAD:
        with pytest.raises(ValueError, match="NAME=X0,Y0,X1,Y1"):
            parse_box(bad)


def test_the_contact_sheet_refuses_bad_regions_as_an_argument_error():
    from cinemagraph.eval import contact_sheet as sheet

    assert sheet.parse_region("a=1,2,3,4") == ("a", (1, 2, 3, 4))
    with pytest.raises(argparse.ArgumentTypeError, match="--region 'a=1,2,3'"):
        sheet.parse_region("a=1,2,3")


def test_the_box_change_is_the_signed_mean_over_the_box_only():
    before = np.zeros((10, 20, 3), np.uint8)
    after = before.copy()
    after[2:4, 5:9] = (10, 20, 200)   # inside the box x 5..9, y 2..4
    after[8, 15] = 255                # outside
    np.testing.assert_allclose(box_change(before, after, (5, 2, 9, 4)), [10, 20, 200])
    np.testing.assert_allclose(box_change(after, before, (5, 2, 9, 6)), [-5, -10, -100])
    with pytest.raises(UserError, match="does not fit the 20x10 frame"):
        box_change(before, after, (0, 0, 21, 4))


def _photo_folder(folder: Path, moving: bool) -> Path:
    """A small photo folder: a gradient with a dark square; where ``moving``, the square
    stands in front of it (a depth map) and its lower part flows right (labelme hints), so
    the learned decoder's correction has holes and moving points to apply to."""
    import json

    import imageio.v3 as iio

    folder.mkdir(parents=True)
    y, x = np.mgrid[0:48, 0:64]
    image = np.stack([x * 4, y * 5, np.full_like(x, 160)], -1).astype(np.uint8)
    image[16:32, 24:40] = 30
    iio.imwrite(folder / "image.png", image)
    if moving:
        depth = (250 - 3 * y).astype(np.uint8)  # farther up, as a ground plane
        depth[16:32, 24:40] = 40
        iio.imwrite(folder / DEPTH_FILE, depth)
        shapes = [{"label": "water", "shape_type": "polygon",
                   "points": [[0, 34], [63, 34], [63, 47], [0, 47]]},
                  {"label": "hint", "shape_type": "line", "points": [[10, 40], [40, 40]]}]
        (folder / HINTS_FILE).write_text(json.dumps({"shapes": shapes, "imageWidth": 64,
                                                     "imageHeight": 48}))
    return folder


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    return _photo_folder(tmp_path_factory.mktemp("photos") / "square", moving=True)


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    """The photo without depth map or hints."""
    return _photo_folder(tmp_path_factory.mktemp("still") / "square", moving=False)


def test_weights_that_render_as_the_built_in_decoder_change_no_box_and_noisy_ones_do(
        photo, tmp_path):
    torch.manual_seed(0)
    same = tmp_path / "same.safetensors"
    save_spacetime(SpaceTimeModel("small"), same)  # untrained: renders as the built-in decoder
    noisy = SpaceTimeModel("small")
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_spacetime(noisy, tmp_path / "noisy.safetensors")
    check = PhotoCheck({photo: [(24, 16, 40, 32), (0, 0, 64, 48)]}, ("zoom-in",), frames=4,
                       max_size=64, device="cpu")
    work = tmp_path / "work"
    work.mkdir()
    unchanged = check.changes(same, work)
    assert list(unchanged) == ["square@zoom-in=24,16,40,32", "square@zoom-in=0,0,64,48"]
    assert all(np.abs(c).max() < 1e-6 for c in unchanged.values())
    changed = check.changes(tmp_path / "noisy.safetensors", work)
    assert np.abs(changed["square@zoom-in=0,0,64,48"]).max() > 1.0
    # Frame 0 of the built-in render is the photo.
    middle, first = render_photo(photo, work, camera="zoom-in", frames=4, max_size=64,
                                 device="cpu")
    assert first.shape == (48, 64, 3) and middle.shape == first.shape


def test_a_missing_photo_or_a_box_off_the_frame_fails_in_one_line(photo, tmp_path):
    with pytest.raises(UserError, match="no image.jpg or image.png"):
        PhotoCheck({tmp_path: [(0, 0, 1, 1)]})
    # A box beyond the frame at this size fails when the check is set up, before any render.
    PhotoCheck({photo: [(0, 0, 64, 48)]}, max_size=64)
    with pytest.raises(UserError, match="does not fit the 32x24 frame"):
        PhotoCheck({photo: [(0, 0, 64, 48)]}, max_size=32)


def test_the_weights_given_are_rendered_even_where_an_official_checkpoint_is_found(
        photo, tmp_path, monkeypatch):
    official = tmp_path / "official"
    official.mkdir()
    (official / "model_100.pth").write_bytes(b"")  # found first by default, and unreadable
    monkeypatch.setenv("CINEMAGRAPH_WEIGHTS", str(official))
    save_spacetime(SpaceTimeModel("small"), tmp_path / "w.safetensors")
    middle, _ = render_photo(photo, tmp_path, camera="zoom-in", frames=2, max_size=32,
                             device="cpu", weights=tmp_path / "w.safetensors")
    assert middle.shape == (24, 32, 3)


def test_the_render_runs_our_networks_at_the_decoder_size_it_is_given(photo, tmp_path):
    torch.manual_seed(1)
    noisy = SpaceTimeModel("small")
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    weights = tmp_path / "noisy.safetensors"
    save_spacetime(noisy, weights)
    settings = dict(camera="circle", frames=4, max_size=64, device="cpu", weights=weights)
    own = render_photo(photo, tmp_path, decoder_size=0, **settings)[0]
    default = render_photo(photo, tmp_path, **settings)[0]  # 448: larger than frame and border
    # The photo's own size: its layers are larger (the circle's border), but not shrunk.
    same = render_photo(photo, tmp_path, decoder_size=64, **settings)[0]
    shrunk = render_photo(photo, tmp_path, decoder_size=32, **settings)[0]
    assert np.array_equal(own, default) and np.array_equal(own, same)
    assert np.abs(own.astype(int) - shrunk.astype(int)).max() > 2


def test_a_mirrored_photo_folder_mirrors_the_photo_its_depth_and_its_hints(tmp_path):
    import json

    import imageio.v3 as iio

    from cinemagraph.eval.photos import mirror_box, mirror_photo

    folder = tmp_path / "photo"
    folder.mkdir()
    image = np.random.default_rng(0).integers(0, 255, (12, 20, 3), dtype=np.uint8)
    depth = np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 200
    iio.imwrite(folder / "image.jpg", image)  # a JPEG photo comes back as a PNG, no loss more
    image = iio.imread(folder / "image.jpg")
    iio.imwrite(folder / "depth.png", depth)
    hints = {"imageWidth": 20, "imageHeight": 12, "imageData": "abc",
             "shapes": [{"label": "hint", "shape_type": "line", "points": [[2.5, 3], [6, 4]]},
                        {"label": "water", "shape_type": "polygon",
                         "points": [[0, 0], [20, 0], [20, 12]]}]}
    (folder / "image.json").write_text(json.dumps(hints))
    out = mirror_photo(folder, tmp_path / "mirrored")
    assert np.array_equal(iio.imread(out / "image.png"), image[:, ::-1])
    assert not (out / "image.jpg").exists()
    got = iio.imread(out / "depth.png")
    assert got.dtype == np.uint16 and np.array_equal(got, depth[:, ::-1])
    data = json.loads((out / "image.json").read_text())
    assert data["shapes"][0]["points"] == [[17.5, 3], [14, 4]]
    assert data["shapes"][1]["points"] == [[20, 0], [0, 0], [0, 12]]
    assert data["imageData"] is None and data["imageWidth"] == 20
    assert mirror_box((2, 3, 5, 9), 20) == (15, 3, 18, 9)


def test_the_mirrored_check_measures_the_mirrored_boxes_on_the_mirrored_photo(still, photo,
                                                                              tmp_path):
    import imageio.v3 as iio

    from cinemagraph.eval.photos import mirror_photo

    # The built-in render of the mirrored photo along the (mirror-symmetric) zoom is nearly
    # the built-in render mirrored, so a box mirrored lands on the same content (to a level
    # or two on the steep gradient, and but for one column of the dark square's edge, where
    # the pipeline breaks a tie one way).
    work = tmp_path / "work"
    work.mkdir()
    settings = dict(camera="zoom-in", frames=4, max_size=64, device="cpu")
    middle = render_photo(still, work, **settings)[0]
    mirrored = render_photo(mirror_photo(still, tmp_path / "m" / "square"), work, **settings)[0]
    off = np.abs(mirrored.astype(int) - middle[:, ::-1]).max(2)
    assert (off > 4).mean() < 0.01 and off.mean() < 0.5
    assert np.abs(mirrored.astype(int) - middle).max() > 100  # the gradient runs the other way
    assert iio.imread(tmp_path / "m" / "square" / "image.png").shape == (48, 64, 3)

    torch.manual_seed(0)
    noisy = SpaceTimeModel("small")
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_spacetime(noisy, tmp_path / "noisy.safetensors")
    save_spacetime(SpaceTimeModel("small"), tmp_path / "same.safetensors")
    check = PhotoCheck({photo: [(0, 0, 16, 48), (24, 16, 40, 32)]}, ("zoom-in",), frames=4,
                       max_size=64, device="cpu", mirrored=True)
    same = check.changes(tmp_path / "same.safetensors", work)
    assert list(same) == ["square@zoom-in=0,0,16,48", "square@zoom-in=24,16,40,32",
                          "square@zoom-in+mirror=0,0,16,48", "square@zoom-in+mirror=24,16,40,32"]
    assert all(np.abs(c).max() < 1e-6 for c in same.values())
    changed = check.changes(tmp_path / "noisy.safetensors", work)
    assert (work / "mirrored" / "square" / "image.png").is_file()
    # The noisy networks are no mirror-symmetric function: the left strip changes otherwise
    # on the mirrored photo (where it is the right strip).
    assert np.abs(changed["square@zoom-in+mirror=0,0,16,48"]
                  - changed["square@zoom-in=0,0,16,48"]).max() > 0.5
