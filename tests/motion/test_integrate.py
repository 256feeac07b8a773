import torch

from cinemagraph.conventions import pixel_grid
from cinemagraph.motion import integrate_displacements


def analytic_field(x, y):
    """A smooth rotational-shear field, linear in x and y (bilinear sampling is exact)."""
    return 0.3 + 0.01 * (y - 20.0), -0.2 + 0.008 * (x - 30.0)


def test_euler_integration_matches_brute_force_trajectories():
    h, w, steps = 48, 64, 25
    grid = pixel_grid(h, w)[0]
    fx, fy = analytic_field(grid[0], grid[1])
    flow = torch.stack([fx, fy])[None]
    points = torch.tensor([[10.0, 10.0], [30.5, 20.25], [50.0, 35.0], [5.0, 40.0]])
    out = integrate_displacements(flow, points, steps)
    assert out.shape == (steps + 1, 4, 2)
    assert torch.all(out[0] == 0)
    for t in range(1, steps + 1):  # from scratch, in float64, with the analytic field
        for i, p in enumerate(points.double()):
            x = p.clone()
            for _ in range(t):
                dx, dy = analytic_field(x[0], x[1])
                x = x + torch.stack([dx, dy])
            assert torch.allclose(out[t, i].double(), x - p, atol=1e-3), (t, i)


def test_points_in_still_regions_do_not_move_and_reverse_goes_back():
    flow = torch.zeros(1, 2, 20, 20)
    flow[:, 0, :, 10:] = 0.5
    pts = torch.tensor([[2.0, 5.0], [12.0, 5.0]])
    fwd = integrate_displacements(flow, pts, 4)
    bwd = integrate_displacements(-flow, pts, 6)
    assert torch.all(fwd[:, 0] == 0)
    assert torch.allclose(fwd[4, 1], torch.tensor([2.0, 0.0]))
    # Backwards from x=12 at -0.5 per step: 10 after 4 steps, 9.5, then 9.25 where the
    # bilinear field is half as fast at the border of the still region.
    assert torch.allclose(bwd[4, 1], torch.tensor([-2.0, 0.0]))
    assert torch.allclose(bwd[6, 1], torch.tensor([-2.75, 0.0]))


def test_points_leaving_the_image_stop_outside():
    flow = torch.zeros(1, 2, 10, 10)
    flow[:, 0] = 1.0
    out = integrate_displacements(flow, torch.tensor([[7.0, 5.0]]), 10)
    final = 7.0 + out[-1, 0, 0]
    assert 9.0 <= final <= 10.5
    assert out[-1, 0, 0] == out[-2, 0, 0]
