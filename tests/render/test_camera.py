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


def _edge_reach(path, depth, K):
    """How far, in pixels, the photo's edges come into any view of ``path`` (0: never)."""
    from cinemagraph.conventions import project, transform_points, unproject

    h, w = depth.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    edge = (ys == 0) | (ys == h - 1) | (xs == 0) | (xs == w - 1)
    xy = torch.stack([xs[edge], ys[edge]], 1)
    points = unproject(xy, depth[0, 0][edge], K)
    worst = 0.0
    for pose, k in zip(path.world_to_camera, path.K):
        p, _ = project(transform_points(pose, points), k)
        left, right = p[xy[:, 0] == 0, 0].max(), (w - 1) - p[xy[:, 0] == w - 1, 0].min()
        top, bottom = p[xy[:, 1] == 0, 1].max(), (h - 1) - p[xy[:, 1] == h - 1, 1].min()
        worst = max(worst, float(max(left, right, top, bottom)))
    return worst


def test_framing_crops_a_path_to_what_the_photo_shows():
    from cinemagraph.render.camera import MAX_FRAMING_ZOOM, framed

    h, w = 48, 64
    K = default_intrinsics(h, w)[0]
    # Near ground at the bottom, far at the top (as photos are).
    depth = torch.linspace(6.0, 1.0, h).view(1, 1, h, 1).expand(1, 1, h, w).clone()
    for name in ("circle", "side", "swing", "up-down"):
        path = named_path(name, 12, K, median=3.0)
        assert _edge_reach(path, depth, K) > 1.0  # as given, it looks past the photo
        cropped, framing = framed(path, depth, K)
        assert 1.0 < framing.zoom < MAX_FRAMING_ZOOM and framing.uncovered == 0.0
        assert _edge_reach(cropped, depth, K) <= 0.5 + 1e-3, name
        assert torch.equal(cropped.world_to_camera, path.world_to_camera)
    # The circle goes down and back: only the bottom needs a margin, so the crop moves up.
    _, framing = framed(named_path("circle", 12, K, median=3.0), depth, K)
    assert framing.centre[1] < (h - 1) / 2 - 1 and abs(framing.centre[0] - (w - 1) / 2) < 1e-3
    # Paths that stay inside the photo are left alone.
    for name in ("static", "zoom-in"):
        path = named_path(name, 12, K)
        cropped, framing = framed(path, depth, K)
        assert framing.zoom == 1.0 and cropped is path
    # A path that would need more than the largest zoom gets that zoom and says what is left.
    wide = named_path("side", 12, K, near=6.0)
    cropped, framing = framed(wide, depth, K)
    assert framing.zoom == MAX_FRAMING_ZOOM and framing.uncovered > 1.0
    assert abs(_edge_reach(cropped, depth, K) - framing.uncovered) < 1.0
