"""The path sheet: first, middle and last frame of a photo along each camera path."""

import numpy as np

from cinemagraph.eval.path_sheet import main, path_sheet
from cinemagraph.media import save_image

from conftest import textured


def test_a_sheet_has_a_row_per_path_and_the_first_frame_is_the_photo(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    image = (textured(32, 48, seed=2)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    save_image(photo, image)
    sheet = path_sheet(str(photo), ["zoom-in", "side"], frames=4, max_size=0,
                       decoder="builtin", device="cpu")
    assert sheet.shape == (2 * 32, 3 * 48, 3) and sheet.dtype == np.uint8
    # zoom-in starts at the source camera and needs no crop: its first frame is the photo
    # (but for the label in the corner).
    first = sheet[:32, :48].astype(int)
    assert np.abs(first[20:, :] - image[20:, :].astype(int)).max() <= 1
    assert not np.array_equal(sheet[:32, 48:96], sheet[:32, :48])  # the camera moved
    out = tmp_path / "sheet.png"
    argv = [str(photo), str(out), "--cameras", "zoom-in", "--frames", "3", "--max-size", "0",
            "--decoder", "builtin", "--device", "cpu"]
    assert main(argv) == 0 and out.is_file()
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([str(tmp_path / "none.png"), str(tmp_path / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
