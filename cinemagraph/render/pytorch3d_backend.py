"""The same splatting through PyTorch3D's rasteriser and alpha compositor (optional).

PyTorch3D is not on PyPI for Linux; install it from its conda channel to use
``--renderer pytorch3d``. Conventions are converted here: PyTorch3D's NDC has +x left and
+y up, and its shorter image side spans ``[-1, 1]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import UserError
from .splat import ZNEAR, SplatOutput


def splat_points_pytorch3d(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
                           size: tuple[int, int], points_per_pixel: int = 8) -> SplatOutput:
    """Return what :func:`~cinemagraph.render.splat.splat_points` returns, via PyTorch3D."""
    try:
        from pytorch3d.renderer.compositing import alpha_composite
        from pytorch3d.renderer.points.rasterize_points import rasterize_points
        from pytorch3d.structures import Pointclouds
    except ImportError:
        raise UserError("the pytorch3d renderer backend needs pytorch3d: install it "
                        "(conda install pytorch3d -c pytorch3d) or use --renderer torch") from None
    h, w = size
    s = min(h, w)
    keep = z > ZNEAR
    ndc = torch.stack([-(2.0 * xy[:, 0] + 1.0 - w) / s, -(2.0 * xy[:, 1] + 1.0 - h) / s, z], -1)
    ndc, feats, r = ndc[keep], features[keep], radius[keep] * 2.0 / s
    clouds = Pointclouds(points=[ndc], features=[feats])
    idx, _, dists = rasterize_points(clouds, image_size=(h, w), radius=r,
                                     points_per_pixel=points_per_pixel)
    idx = idx.permute(0, 3, 1, 2).long()  # (1, K, H, W)
    valid = idx >= 0
    r2 = (r.square())[idx.clamp_min(0)]
    alphas = torch.where(valid, 1.0 - dists.permute(0, 3, 1, 2) / r2, torch.zeros_like(r2))
    out = alpha_composite(idx, alphas, feats.transpose(0, 1))
    opacity = 1.0 - torch.prod(1.0 - alphas, dim=1, keepdim=True)
    return SplatOutput(out, opacity)
