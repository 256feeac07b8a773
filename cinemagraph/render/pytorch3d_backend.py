"""The same splatting through PyTorch3D's rasteriser and alpha compositor (optional).

PyTorch3D is not on PyPI for Linux; install it from its conda channel to use
``--renderer pytorch3d``. Conventions are converted here: PyTorch3D's NDC has +x left and
+y up, and its shorter image side spans ``[-1, 1]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from .splat import ZNEAR, SplatOutput, composite_weights, point_opacity


def splat_points_pytorch3d(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
                           size: tuple[int, int], points_per_pixel: int = 8,
                           surface: Tensor | None = None) -> SplatOutput:
    """Return what :func:`~cinemagraph.render.splat.splat_points` returns, via PyTorch3D's
    rasteriser (the K nearest points of each pixel and their distances); the opacity and
    the compositing are ours (:func:`~cinemagraph.render.splat.composite_weights`)."""
    try:
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
    k = idx.shape[-1]
    idx = idx.view(h * w, k).long()  # nearest first
    valid = idx >= 0
    table = idx.clamp_min(0)
    rk = r[table]
    alphas = torch.where(valid, point_opacity(dists.view(h * w, k), rk.square()), 0.0)
    if surface is None:
        weights, opacity = composite_weights(alphas)
    else:
        # The bilinear weights, from the points' pixel offsets (NDC spans 2 / s a pixel).
        pixel = torch.arange(h * w, device=xy.device)
        kept = xy[keep]
        dx = (pixel % w).to(xy.dtype)[:, None] - kept[table, 0]
        dy = (pixel // w).to(xy.dtype)[:, None] - kept[table, 1]
        rpx = rk * s / 2.0
        share = torch.where(valid, (1.0 - dx.abs() / rpx) * (1.0 - dy.abs() / rpx), 0.0)
        weights, opacity = composite_weights(alphas, ndc[:, 2][table].detach(),
                                             surface[keep][table], share)
    out = F.embedding_bag(table, feats, per_sample_weights=weights.to(feats.dtype), mode="sum")
    return SplatOutput(out.transpose(0, 1).reshape(1, -1, h, w), opacity.view(1, 1, h, w))
