import pytest
import torch

from cinemagraph.render.splat import splat_points, splat_points_reference

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_points(n, size, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    xy = (torch.rand(n, 2, generator=g) * torch.tensor([w + 1.0, h + 1.0]) - 1.0)
    z = torch.rand(n, generator=g) + 0.5
    r = torch.rand(n, generator=g) * 1.8 + 0.4
    f = torch.randn(n, 3, generator=g)
    return [t.to(device=device, dtype=dtype) for t in (xy, z, r, f)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 3, 8])
def test_fast_splatter_matches_reference_values(device, k):
    size = (7, 9)
    xy, z, r, f = random_points(80, size, torch.float64, device)
    fast = splat_points(xy, z, r, f, size, k)
    ref = splat_points_reference(xy, z, r, f, size, k)
    assert torch.allclose(fast.features, ref.features, atol=1e-10)
    assert torch.allclose(fast.alpha, ref.alpha, atol=1e-10)
    assert fast.alpha.max() > 0.5  # the test scene is actually covered


@pytest.mark.parametrize("device", DEVICES)
def test_fast_splatter_matches_reference_gradients(device):
    size = (6, 8)
    xy, z, r, f = random_points(50, size, torch.float64, device, seed=1)
    grads = []
    for fn in (splat_points, splat_points_reference):
        a, b = xy.clone().requires_grad_(), f.clone().requires_grad_()
        out = fn(a, z, r, b, size, 4)
        weights = torch.linspace(0.5, 1.5, out.features.numel(), dtype=torch.float64,
                                 device=device).view_as(out.features)
        ((out.features * weights).sum() + out.alpha.sum()).backward()
        grads.append((a.grad, b.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-9)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-9)
    assert grads[0][0].abs().sum() > 0


def test_gradcheck_float64():
    size = (4, 5)
    xy, z, r, f = random_points(12, size, torch.float64, "cpu", seed=2)
    xy.requires_grad_()
    f.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: splat_points(a, z, r, b, size, 3).features,
                                    (xy, f), eps=1e-6, atol=1e-5)


def test_nearest_point_wins_and_points_behind_the_camera_are_culled():
    xy = torch.tensor([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    z = torch.tensor([3.0, 1.0, -1.0])
    r = torch.ones(3)
    f = torch.tensor([[1.0], [2.0], [5.0]])
    out = splat_points(xy, z, r, f, (5, 5), 8)
    assert out.features[0, 0, 2, 2] == 2.0  # opaque at its centre, in front
    assert out.alpha[0, 0, 2, 2] == 1.0
    assert out.alpha[0, 0, 0, 0] == 0.0


def test_nothing_visible_gives_an_empty_transparent_image():
    xy = torch.tensor([[2.0, 2.0], [40.0, 2.0]])
    z = torch.tensor([-1.0, 2.0])  # one behind the camera, one outside the image
    out = splat_points(xy, z, torch.ones(2), torch.ones(2, 4), (5, 5), 8)
    assert out.features.shape == (1, 4, 5, 5)
    assert out.features.abs().sum() == 0 and out.alpha.abs().sum() == 0


@pytest.mark.parametrize("device", DEVICES)
def test_a_splat_plan_applied_to_features_equals_splatting_them(device):
    from cinemagraph.render.splat import apply_splat_plan, plan_splat

    size = (9, 11)
    xy, z, r, f = random_points(120, size, torch.float64, device, seed=3)
    plan = plan_splat(xy, z, r, size, 4)
    f = f.clone().requires_grad_(True)
    planned = apply_splat_plan(plan, f)
    direct = splat_points(xy, z, r, f, size, 4)
    assert torch.equal(planned.features, direct.features)
    assert torch.equal(plan.alpha, direct.alpha)
    weight = torch.randn_like(direct.features)
    g_plan, = torch.autograd.grad((planned.features * weight).sum(), f)
    g_direct, = torch.autograd.grad((direct.features * weight).sum(), f)
    assert torch.allclose(g_plan, g_direct) and g_plan.abs().sum() > 0
