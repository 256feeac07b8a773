import pytest
import torch
import torch.nn.functional as F

from cinemagraph.filters import dilate, erode, joint_weighted_median


def max_pool_dilate(mask, radius):
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0.5


@pytest.mark.parametrize("radius", [1, 3, 9, 40])
def test_dilate_matches_a_max_pool_with_the_same_square(radius):
    g = torch.Generator().manual_seed(radius)
    mask = torch.rand(2, 1, 23, 31, generator=g) > 0.97
    out = dilate(mask, radius)
    assert out.dtype == torch.bool and out.shape == mask.shape
    assert torch.equal(out, max_pool_dilate(mask, radius))
    assert out.sum() > mask.sum()


def test_dilate_of_one_pixel_is_a_square_and_erode_undoes_it():
    mask = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    mask[0, 0, 4, 4] = True
    grown = dilate(mask, 2)
    assert grown.sum() == 25 and grown[0, 0, 2:7, 2:7].all()
    assert torch.equal(erode(grown, 2), mask)
    assert torch.equal(dilate(mask, 0), mask)


def test_weighted_median_moves_a_blurred_depth_edge_onto_the_colour_edge():
    h, w = 16, 40
    guide = torch.zeros(1, 3, h, w)
    guide[..., 20:] = 1.0  # colour edge between columns 19 and 20
    x = torch.arange(w, dtype=torch.float32)
    # Disparity ramps from 1 to 3 over columns 12..28: a blurred step, centred off the edge.
    blurred = (1.0 + 2.0 * ((x - 12) / 16).clamp(0, 1)).expand(1, 1, h, w).contiguous()
    out = joint_weighted_median(blurred, guide, radius=3, iterations=4)
    row = out[0, 0, h // 2]
    # The ramp (0.125 per pixel) becomes a step at the colour edge: its largest jump is
    # there, six times the old slope, and each side stays on its side of the jump.
    jumps = row[1:] - row[:-1]
    assert int(jumps.argmax()) == 19 and jumps[19] > 0.75 - 1e-6
    assert row[:20].max() < row[20:].min()
    # Far from any edge, nothing changes.
    assert torch.equal(out[..., :5], blurred[..., :5])


def test_weighted_median_leaves_a_smooth_ramp_alone():
    ramp = torch.linspace(1.0, 2.0, 30).expand(1, 1, 12, 30).contiguous()
    guide = torch.rand(1, 3, 12, 30, generator=torch.Generator().manual_seed(0))
    out = joint_weighted_median(ramp, guide, radius=2, iterations=2)
    assert torch.allclose(out, ramp)
