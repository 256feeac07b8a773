import json

import pytest
import torch

from cinemagraph.conventions import default_intrinsics
from cinemagraph.errors import UserError
from cinemagraph.render.camera import NAMED_PATHS, build_camera_path, named_path

K = default_intrinsics(48, 64)[0]


@pytest.mark.parametrize("name", NAMED_PATHS)
def test_named_paths_start_at_the_source_camera(name):
    path = named_path(name, 12, K)
    assert path.world_to_camera.shape == (12, 4, 4) and path.K.shape == (12, 3, 3)
    assert torch.allclose(path.world_to_camera[0], torch.eye(4), atol=1e-6)
    assert torch.allclose(path.K[0], K)


@pytest.mark.parametrize("name", ["side", "up-down", "circle", "swing"])
def test_closed_paths_loop(name):
    path = named_path(name, 24, K)
    assert path.closed
    poses = path.world_to_camera
    steps = (poses[1:] - poses[:-1]).flatten(1).norm(dim=1)
    wrap = (poses[0] - poses[-1]).norm()
    # Going from the last frame back to the first is a step like the others: no jump.
    assert wrap <= 1.2 * steps.max()
    assert (poses - poses[0]).flatten(1).norm(dim=1).max() > 3 * steps.max()


def test_dolly_zoom_keeps_the_median_plane_size():
    path = named_path("dolly-zoom", 10, K, near=1.0, median=3.0)
    back = path.world_to_camera[-1, 2, 3]  # camera moved back: world z grows in camera frame
    assert back > 0
    assert torch.allclose(path.K[-1, 0, 0] / K[0, 0], (3.0 + back) / 3.0)


def test_keyframed_json_path(tmp_path):
    spec = tmp_path / "path.json"
    spec.write_text(json.dumps({"keyframes": [
        {"time": 0, "position": [0, 0, 0]},
        {"time": 1, "position": [0.1, 0, 0.2], "zoom": 2.0}]}))
    path = build_camera_path(str(spec), 5, K)
    assert torch.allclose(path.world_to_camera[-1, :3, 3], torch.tensor([-0.1, 0.0, -0.2]))
    assert torch.allclose(path.K[2, 0, 0], K[0, 0] * 1.5)


@pytest.mark.parametrize("content, message", [
    ("nope", "not valid JSON"),
    ('{"keyframes": []}', "non-empty"),
    ('{"keyframes": [{"time": 0, "position": [0, 0]}]}', "3 numbers"),
    ('{"keyframes": [{"time": 0.5, "position": [0, 0, 0]}, {"time": 0.2, "position": [0, 0, 0]}]}',
     "increasing"),
])
def test_malformed_path_files_are_refused(tmp_path, content, message):
    spec = tmp_path / "p.json"
    spec.write_text(content)
    with pytest.raises(UserError, match=message):
        build_camera_path(str(spec), 5, K)


def test_unknown_camera_name():
    with pytest.raises(UserError, match="unknown camera"):
        build_camera_path("spiral", 5, K)


def test_border_needed_is_zero_inside_the_frustum_and_grows_with_sideways_motion():
    from cinemagraph.conventions import default_intrinsics
    from cinemagraph.render.camera import AMPLITUDE, border_needed

    K = default_intrinsics(48, 64)[0]
    for name in ("static", "zoom-in"):
        assert border_needed(named_path(name, 8, K), K, (48, 64)) == 0.0
    side = border_needed(named_path("side", 8, K), K, (48, 64))
    # A sideways move of A (near depth 1) shows A * f pixels past the edge; f is the long side.
    assert abs(side - (AMPLITUDE + 0.01)) < 0.003
    assert border_needed(named_path("side", 8, K, near=2.0), K, (48, 64)) > side
