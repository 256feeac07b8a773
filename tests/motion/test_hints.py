import json

import numpy as np
import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.motion import (HINT_FRAMES, HintInterpolator, parse_hint_arg, read_hints_json,
                                read_labelme, read_mask)


def labelme(tmp_path, shapes, w=64, h=48):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"shapes": shapes, "imageWidth": w, "imageHeight": h}))
    return path


POLY = {"label": "motion", "shape_type": "polygon",
        "points": [[10, 10], [50, 10], [50, 40], [10, 40]]}


def test_labelme_polygons_become_the_mask_and_lines_the_hints(tmp_path):
    hint = {"label": "hint0", "shape_type": "line", "points": [[20, 20], [20 + HINT_FRAMES, 20]]}
    hints = read_labelme(labelme(tmp_path, [POLY, hint]), (48, 64))
    assert len(hints) == 1
    assert torch.allclose(hints.vectors, torch.tensor([[1.0, 0.0]]))
    assert hints.mask[0, 0, 25, 30] and not hints.mask[0, 0, 5, 5]


def test_interpolated_field_moves_the_mask_only_and_follows_the_hints(tmp_path):
    hints = read_labelme(labelme(tmp_path, [POLY,
        {"label": "hint0", "shape_type": "line", "points": [[20, 25], [20, 75]]}]), (48, 64))
    field = HintInterpolator()(hints, (48, 64))
    assert torch.all(field.flow[:, :, ~hints.mask[0, 0]] == 0)
    assert torch.allclose(field.flow[0, :, 25, 25], torch.tensor([0.0, 1.0]), atol=1e-4)
    again = HintInterpolator()(hints, (48, 64))
    assert torch.equal(field.flow, again.flow)  # deterministic


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"shapes": 3}', "no 'shapes'"),
    ('{"shapes": [{"label": "hint0", "shape_type": "line", "points": [[1, 2]]}]}', "expected 2"),
    ('{"shapes": [{"label": "hint0", "shape_type": "line", "points": [[1, 2], [1, 2]]}]}', "zero length"),
    ('{"shapes": [{"label": "hint0", "shape_type": "line", "points": [[500, 2], [510, 2]]}]}', "starts outside"),
    ('{"shapes": [], "imageWidth": 10, "imageHeight": 10}', "was drawn on a 10x10"),
])
def test_malformed_labelme_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_labelme(path, (48, 64))


def test_hints_json_and_command_line_hints(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"hints": [{"start": [5, 5], "end": [5, 55]}],
                                "polygons": [[[0, 0], [20, 0], [20, 20]]]}))
    hints = read_hints_json(path, (48, 64))
    assert torch.allclose(hints.vectors, torch.tensor([[0.0, 1.0]]))
    assert hints.mask.any()
    path.write_text(json.dumps({"hint": []}))
    with pytest.raises(UserError, match="unknown keys"):
        read_hints_json(path, (48, 64))
    assert len(parse_hint_arg("1,2,3,4", (48, 64))) == 1
    with pytest.raises(UserError, match="four numbers"):
        parse_hint_arg("1,2,3", (48, 64))


def test_mask_of_the_wrong_size_is_refused(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "m.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(UserError, match="image's size"):
        read_mask(tmp_path / "m.png", (48, 64))


def test_a_scaled_mask_has_the_resized_photo_size_even_where_the_factor_floors():
    import torch

    from cinemagraph.motion import MotionHints

    hints = MotionHints(torch.zeros(0, 2), torch.zeros(0, 2), torch.ones(1, 1, 720, 1280, dtype=torch.bool))
    scaled = hints.scaled(448 / 1280, (252, 448))  # 720 * 0.35 = 251.99...
    assert scaled.mask.shape == (1, 1, 252, 448) and bool(scaled.mask.all())
