import pytest
import torch
import torch.nn.functional as F

from cinemagraph.filters import (_pooled_max, _pooled_mean, box_mean, dilate, erode,
                                 joint_weighted_median, max_filter)


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


@pytest.mark.parametrize("size", [1, 3, 9, 31, 191])
@pytest.mark.parametrize("shape", [(2, 1, 23, 31), (1, 1, 252, 448), (1, 3, 1, 5)])
def test_max_filter_and_box_mean_are_the_pools_at_any_width(size, shape):
    g = torch.Generator().manual_seed(size)
    x = torch.rand(shape, generator=g)
    x[..., :3, :4] = 0.0  # flat parts and a window wider than the frame
    assert torch.equal(max_filter(x, size), F.max_pool2d(x, size, 1, size // 2))
    mean = box_mean(x, size)
    assert mean.dtype == x.dtype and mean.shape == x.shape
    exact = F.avg_pool2d(x.double(), size, 1, size // 2, count_include_pad=False)
    # As exact as float32 holds it (the pool's own float32 sums are 100 times further off
    # at 191 px).
    assert (mean.double() - exact).abs().max() < 1e-7
    # What a GPU runs instead (the pools), here on the CPU.
    assert torch.equal(_pooled_max(x, size), max_filter(x, size))
    assert (_pooled_mean(x, size).double() - exact).abs().max() < 1e-5


def test_max_filter_and_box_mean_of_one_pixel():
    x = torch.zeros(1, 1, 7, 9)
    x[0, 0, 3, 4] = 1.0
    grown = max_filter(x, 3)
    assert grown.sum() == 9 and grown[0, 0, 2:5, 3:6].eq(1).all()
    # The corner's 2x2 part of a 3x3 window: the mean over what lies inside the frame.
    corner = torch.zeros(1, 1, 4, 4)
    corner[0, 0, 0, 0] = 1.0
    assert box_mean(corner, 3)[0, 0, 0, 0] == 0.25 and box_mean(corner, 3)[0, 0, 1, 1] == 1 / 9
    with pytest.raises(ValueError, match="odd"):
        max_filter(x, 4)
    with pytest.raises(ValueError, match="odd"):
        box_mean(x, 4)
