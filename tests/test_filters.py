import pytest
import torch
import torch.nn.functional as F

from cinemagraph.filters import dilate, erode


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
