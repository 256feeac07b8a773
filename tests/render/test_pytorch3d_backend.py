"""The optional PyTorch3D backend: the same job as ours, where pytorch3d is importable."""

import importlib.util

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.render.pytorch3d_backend import splat_points_pytorch3d
from cinemagraph.render.splat import splat_points

from .test_splat import random_points

HAS_PYTORCH3D = importlib.util.find_spec("pytorch3d") is not None


@pytest.mark.skipif(not HAS_PYTORCH3D, reason="pytorch3d is not installed (not on PyPI for Linux)")
@pytest.mark.parametrize("size", [(7, 9), (9, 7)])
def test_pytorch3d_backend_matches_ours(size):
    xy, z, r, f = random_points(120, size, torch.float32, "cpu", seed=3)
    ours = splat_points(xy, z, r, f, size, 4)
    theirs = splat_points_pytorch3d(xy, z, r, f, size, 4)
    assert torch.allclose(ours.features, theirs.features, atol=1e-4)
    assert torch.allclose(ours.alpha, theirs.alpha, atol=1e-4)


@pytest.mark.skipif(HAS_PYTORCH3D, reason="pytorch3d is installed")
def test_pytorch3d_backend_without_pytorch3d_says_how_to_install_it():
    xy, z, r, f = random_points(5, (4, 4), torch.float32, "cpu")
    with pytest.raises(UserError, match="conda install pytorch3d"):
        splat_points_pytorch3d(xy, z, r, f, (4, 4), 2)
