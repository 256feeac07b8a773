"""Differentiable point splatting: the K nearest points per pixel, alpha-composited.

Semantics are those of PyTorch3D's ``PointsRasterizer`` + ``AlphaCompositor``, in pixels:

* a point covers the pixels whose centres lie within its radius ``r`` (strictly, ``d < r``);
* each pixel keeps the ``K`` covering points nearest to the camera (smallest ``z``; ties go
  to the lower point index);
* point ``k`` of a pixel has opacity ``a_k = 1 - d_k^2 / r_k^2`` and weight
  ``a_k * prod_{j<k} (1 - a_j)`` (front-to-back compositing);
* the output is the weighted sum of features, and the accumulated opacity
  ``1 - prod_k (1 - a_k)``.

:func:`splat_points` is the fast path (sorting, segment ranks and scatter-adds, in plain
PyTorch on any device); :func:`splat_points_reference` is the slow, obviously correct
version it is tested against. Both are differentiable with respect to positions and features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..conventions import check_shape

#: Points closer to the camera than this are culled.
ZNEAR = 1e-4


class SplatOutput(NamedTuple):
    """``features``: ``(1, C, H, W)`` composited (premultiplied); ``alpha``: ``(1, 1, H, W)``."""

    features: Tensor
    alpha: Tensor


def _check(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor) -> None:
    check_shape("xy", xy, (None, 2))
    n = xy.shape[0]
    check_shape("z", z, (n,))
    check_shape("radius", radius, (n,))
    check_shape("features", features, (n, None))


def splat_points(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
                 size: tuple[int, int], points_per_pixel: int = 8) -> SplatOutput:
    """Return the splatted ``features`` and opacity of points at pixels ``xy (N, 2)``.

    ``z (N,)`` is camera depth, ``radius (N,)`` the footprint in pixels, ``features (N, C)``.
    ``size = (H, W)``. See the module docstring for the semantics.
    """
    _check(xy, z, radius, features)
    h, w = size
    k = points_per_pixel
    n, c = features.shape
    device = xy.device
    with torch.no_grad():
        keep = (z > ZNEAR) & torch.isfinite(xy).all(1) & torch.isfinite(z) & (radius > 0)
        keep &= (xy[:, 0] > -radius - 0.5) & (xy[:, 0] < w - 0.5 + radius)
        keep &= (xy[:, 1] > -radius - 0.5) & (xy[:, 1] < h - 0.5 + radius)
        ids = keep.nonzero().squeeze(1)
        # Rank of each point by depth (ties by index): sorting candidates by
        # pixel * N + rank groups them by pixel, nearest first, in one sort.
        order = ids[torch.sort(z[ids], stable=True).indices]
        zrank = torch.empty(n, dtype=torch.long, device=device)
        zrank[order] = torch.arange(order.numel(), device=device)
        cand_pixel, cand_point = [], []
        span = (2 * radius[ids]).floor().long() + 1  # pixel centres a point can cover, per axis
        for s in torch.unique(span).tolist():
            pts = ids[span == s]
            r = radius[pts]
            x0 = torch.ceil(xy[pts, 0] - r).long()
            y0 = torch.ceil(xy[pts, 1] - r).long()
            offs = torch.arange(s, device=device)
            px = (x0[:, None, None] + offs[None, None, :]).expand(-1, s, s)
            py = (y0[:, None, None] + offs[None, :, None]).expand(-1, s, s)
            dx = px - xy[pts, 0, None, None]
            dy = py - xy[pts, 1, None, None]
            inside = (dx * dx + dy * dy < (r * r)[:, None, None]) & (px >= 0) & (px < w) \
                & (py >= 0) & (py < h)
            cand_pixel.append((py * w + px)[inside])
            cand_point.append(pts[:, None, None].expand(-1, s, s)[inside])
        cand_pixel = torch.cat(cand_pixel) if cand_pixel else torch.zeros(0, dtype=torch.long, device=device)
        cand_point = torch.cat(cand_point) if cand_point else torch.zeros(0, dtype=torch.long, device=device)
        key, perm = torch.sort(cand_pixel * max(n, 1) + zrank[cand_point])
        pixel = key // max(n, 1)
        point = cand_point[perm]
        # Rank within each pixel's run: position minus the run's start. (Runs via
        # unique_consecutive; a cummax over all candidates is several times slower on GPUs.)
        _, counts = torch.unique_consecutive(pixel, return_counts=True)
        starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        rank = torch.arange(pixel.numel(), device=device) - starts
        sel = rank < k
        pixel, point, slot = pixel[sel], point[sel], pixel[sel] * k + rank[sel]
        px = (pixel % w).to(xy.dtype)
        py = (pixel // w).to(xy.dtype)
        # Dense (pixel, slot) table of the kept points; -1 where a pixel has fewer than K.
        table = torch.full((h * w * k,), -1, dtype=torch.long, device=device)
        table[slot] = point
        table = table.view(h * w, k)
    # Differentiable part: opacities from positions, weights, and features.
    d2 = (px - xy[point, 0]).square() + (py - xy[point, 1]).square()
    alpha = (1.0 - d2 / radius[point].square()).clamp(0.0, 1.0)
    dense = torch.zeros(h * w * k, dtype=xy.dtype, device=device).index_put((slot,), alpha)
    dense = dense.view(h * w, k)
    # Front-to-back compositing, slot by slot: K is small, and a scan over rows of length K
    # is far slower on GPUs than K elementwise steps. Features are gathered per slot rather
    # than scatter-added per candidate: no atomics, one (H * W, C) temporary at a time.
    # Empty slots have zero opacity, hence zero weight.
    out = torch.zeros(h * w, c, dtype=features.dtype, device=device)
    transmit = torch.ones(h * w, dtype=xy.dtype, device=device)
    for j in range(k):
        a = dense[:, j]
        out = out + (a * transmit).to(features.dtype)[:, None] * features[table[:, j].clamp_min(0)]
        transmit = transmit * (1.0 - a)
    opacity = 1.0 - transmit
    return SplatOutput(out.transpose(0, 1).reshape(1, c, h, w), opacity.view(1, 1, h, w))


def splat_points_reference(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
                           size: tuple[int, int], points_per_pixel: int = 8) -> SplatOutput:
    """Return the same as :func:`splat_points`, computed pixel by pixel (slow; for tests)."""
    _check(xy, z, radius, features)
    h, w = size
    n, c = features.shape
    rows, alphas = [], []
    index = torch.arange(n, device=xy.device)
    for y in range(h):
        for x in range(w):
            d2 = (xy[:, 0] - x).square() + (xy[:, 1] - y).square()
            covers = (d2 < radius.square()) & (z > ZNEAR)
            cand = index[covers]
            # Nearest first; sorting by (z, index) breaks ties by index.
            cand = cand[torch.argsort(z[cand].detach(), stable=True)][:points_per_pixel]
            color = torch.zeros(c, dtype=features.dtype, device=xy.device)
            transmit = torch.ones((), dtype=xy.dtype, device=xy.device)
            for p in cand.tolist():
                a = 1.0 - d2[p] / radius[p].square()
                color = color + a * transmit * features[p]
                transmit = transmit * (1.0 - a)
            rows.append(color)
            alphas.append(1.0 - transmit)
    out = torch.stack(rows).transpose(0, 1).reshape(1, c, h, w)
    return SplatOutput(out, torch.stack(alphas).view(1, 1, h, w))
