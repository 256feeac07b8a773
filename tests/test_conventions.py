import torch

from cinemagraph.conventions import (bilinear_sample, default_intrinsics, pixel_grid, project,
                                     transform_points, unproject)
from cinemagraph.render.camera import look_at


def test_pixel_to_3d_to_pixel_round_trip():
    K = default_intrinsics(48, 64)[0]
    xy = pixel_grid(48, 64).view(2, -1).t()
    depth = torch.rand(xy.shape[0]) * 10 + 0.5
    points = unproject(xy, depth, K)
    back, z = project(points, K)
    assert torch.allclose(back, xy, atol=1e-3)
    assert torch.allclose(z, depth)


def test_principal_point_is_the_image_centre_and_focal_is_long_side():
    K = default_intrinsics(48, 64)[0]
    assert K[0, 0] == 64 and K[1, 1] == 64
    assert K[0, 2] == 31.5 and K[1, 2] == 23.5
    centre = unproject(torch.tensor([[31.5, 23.5]]), torch.tensor([2.0]), K)
    assert torch.allclose(centre, torch.tensor([[0.0, 0.0, 2.0]]))


def test_world_to_camera_round_trip_through_a_moved_camera():
    pose = look_at(torch.tensor([0.3, -0.2, -0.5]), torch.tensor([0.0, 0.0, 3.0]))
    points = torch.randn(10, 3)
    cam = transform_points(pose, points)
    inv = torch.linalg.inv(pose)
    assert torch.allclose(transform_points(inv, cam), points, atol=1e-5)
    # Looking down +z from the origin is the identity; camera y points down.
    assert torch.allclose(look_at(torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])), torch.eye(4))


def test_bilinear_sample_is_exact_at_pixel_centres_and_linear_between():
    field = pixel_grid(5, 7).to(torch.float32)  # channel 0 = x, 1 = y
    xy = torch.tensor([[0.0, 0.0], [6.0, 4.0], [2.25, 1.5]])
    assert torch.allclose(bilinear_sample(field, xy), xy, atol=1e-5)
