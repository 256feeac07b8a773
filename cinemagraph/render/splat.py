"""Differentiable point splatting: the K nearest points per pixel, alpha-composited.

Semantics are those of PyTorch3D's ``PointsRasterizer`` + ``AlphaCompositor``, in pixels:

* a point covers the pixels whose centres lie within its radius ``r`` (strictly, ``d < r``);
* each pixel keeps the ``K`` covering points nearest to the camera (smallest ``z``; ties go
  to the lower point index);
* point ``k`` of a pixel has opacity ``a_k = 1 - d_k^2 / r_k^2`` and weight
  ``a_k * prod_{j<k} (1 - a_j)`` (front-to-back compositing);
* the output is the weighted sum of features, and the accumulated opacity
  ``1 - prod_k (1 - a_k)``.

:func:`splat_points` is the fast path (one sort, binary search and a fused gather, in plain
PyTorch on any device); :func:`splat_points_reference` is the slow, obviously correct
version it is tested against. Both are differentiable with respect to positions and features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
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
    n, c = features.shape
    if n == 0:
        return SplatOutput(features.new_zeros(1, c, h, w), xy.new_zeros(1, 1, h, w))
    with torch.no_grad():
        table, valid = _table(xy, z, radius, h, w, points_per_pixel)
    weights, opacity = _weights(xy, radius, table, valid, h, w)
    return _apply(table, weights.to(features.dtype), opacity, features, h, w)


class SplatPlan(NamedTuple):
    """The geometry of one splat, to apply to any features of the same points later:
    ``table (H*W, K)`` point indices, ``weights (H*W, K)`` compositing weights (zero in empty
    slots), ``alpha (1, 1, H, W)`` accumulated opacity. Splatting is linear in the features,
    so :func:`apply_splat_plan` equals :func:`splat_points` for fixed positions, with
    gradients to the features only (what training the feature network and decoder needs;
    the plan can be made ahead, e.g. in a data-loading worker)."""

    table: Tensor
    weights: Tensor
    alpha: Tensor

    def to(self, device) -> "SplatPlan":
        return SplatPlan(*(v.to(device, non_blocking=True) for v in self))


@torch.no_grad()
def plan_splat(xy: Tensor, z: Tensor, radius: Tensor, size: tuple[int, int],
               points_per_pixel: int = 8) -> SplatPlan:
    """Return the :class:`SplatPlan` of points at ``xy (N, 2)`` (arguments as
    :func:`splat_points`; at least one point)."""
    _check(xy, z, radius, z[:, None])
    h, w = size
    table, valid = _table(xy, z, radius, h, w, points_per_pixel)
    weights, opacity = _weights(xy, radius, table, valid, h, w)
    return SplatPlan(table, weights, opacity.view(1, 1, h, w))


def apply_splat_plan(plan: SplatPlan, features: Tensor) -> SplatOutput:
    """Return the splat of ``features (N, C)`` by ``plan``."""
    h, w = plan.alpha.shape[-2:]
    return _apply(plan.table, plan.weights.to(features.dtype), plan.alpha.view(-1), features, h, w)


def _table(xy: Tensor, z: Tensor, radius: Tensor, h: int, w: int, k: int) -> tuple[Tensor, Tensor]:
    """The K nearest points per pixel, with empty slots pointing at some point (and False
    in ``valid``)."""
    n = xy.shape[0]
    table = _nearest_points_table(xy, z, radius, h, w, k)
    valid = table >= 0
    # Empty slots get zero opacity but still index some point; spreading them over all
    # points (rather than all on point 0) keeps the backward pass's accumulation free of
    # one huge run of duplicate indices, which GPUs serialise (40x slower end to end).
    spread = torch.arange(h * w * k, device=xy.device).view(h * w, k) % n
    return torch.where(valid, table, spread), valid


def _weights(xy: Tensor, radius: Tensor, table: Tensor, valid: Tensor, h: int,
             w: int) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing weights ``(H*W, K)`` and accumulated opacity ``(H*W,)``;
    differentiable with respect to ``xy`` and ``radius``."""
    k = table.shape[1]
    flat = table.view(-1)
    pixel = torch.arange(h * w, device=xy.device)
    px = (pixel % w).to(xy.dtype)[:, None]
    py = (pixel // w).to(xy.dtype)[:, None]
    # (index_select rather than advanced indexing: the same values, several times faster on
    # CPUs.)
    x, y = xy.unbind(1)
    d2 = (px - x.index_select(0, flat).view(h * w, k)).square() \
        + (py - y.index_select(0, flat).view(h * w, k)).square()
    r2 = radius.index_select(0, flat).view(h * w, k).square()
    alpha = torch.where(valid, (1.0 - d2 / r2).clamp(0.0, 1.0), 0.0)
    # Front-to-back compositing, slot by slot: K is small, and a scan along rows of length K
    # is slower on GPUs than K elementwise steps. Empty slots have zero opacity.
    weights = []
    transmit = torch.ones(h * w, dtype=xy.dtype, device=xy.device)
    for j in range(k):
        weights.append(alpha[:, j] * transmit)
        transmit = transmit * (1.0 - alpha[:, j])
    return torch.stack(weights, 1), 1.0 - transmit


def _apply(table: Tensor, weights: Tensor, opacity: Tensor, features: Tensor, h: int,
           w: int) -> SplatOutput:
    # One fused gather-and-weighted-sum of the K feature rows of each pixel (no (H*W, K, C)
    # temporary, no atomics); differentiable with respect to both the features and the weights.
    c = features.shape[1]
    out = F.embedding_bag(table, features, per_sample_weights=weights, mode="sum")
    return SplatOutput(out.transpose(0, 1).reshape(1, c, h, w), opacity.view(1, 1, h, w))


def _nearest_points_table(xy: Tensor, z: Tensor, radius: Tensor, h: int, w: int,
                          k: int) -> Tensor:
    """Return ``(H * W, K)`` indices of the K nearest covering points per pixel, -1 past the end.

    Candidates (point, covered pixel) are generated in the points' depth order, so a single
    stable sort by pixel leaves every pixel's candidates nearest first; each pixel's run is
    then found by binary search, and its first K entries are the table's row. No
    per-candidate rank is computed and nothing is scattered.
    """
    device = xy.device
    x, y = xy.unbind(1)
    keep = (z > ZNEAR) & torch.isfinite(xy).all(1) & torch.isfinite(z) & (radius > 0)
    keep &= (x > -radius - 0.5) & (x < w - 0.5 + radius)
    keep &= (y > -radius - 0.5) & (y < h - 0.5 + radius)
    ids = keep.nonzero().squeeze(1)
    order = ids[torch.sort(z[ids], stable=True).indices]  # nearest first; ties by index
    span = (2 * radius[order]).floor().int() + 1  # pixel centres a point can cover, per axis
    # Windows wider than 4 are rounded up to a power of two: a few groups (one loop step
    # each) instead of one per width; near points of a zooming camera take many widths,
    # and on a GPU every loop step costs kernel launches rather than arithmetic.
    span = torch.where(span <= 4, span, torch.exp2(torch.ceil(torch.log2(span.float()))).int())
    spans = torch.unique(span).tolist()
    # Each point owns span^2 consecutive candidate slots, in depth order.
    slots = span * span
    offset = torch.cumsum(slots, 0) - slots
    total = int(offset[-1] + slots[-1]) if order.numel() else 0
    cand_pixel = torch.full((total,), -1, dtype=torch.int32, device=device)
    for s in spans:
        where = (span == s).nonzero().squeeze(1) if len(spans) > 1 else None
        pts = order if where is None else order.index_select(0, where)
        cx, cy, r = (v.index_select(0, pts) for v in (x, y, radius))
        # Separable: the s columns and s rows a point can reach, then their (s, s) product.
        offs = torch.arange(s, device=device, dtype=x.dtype)
        gx = torch.ceil(cx - r)[:, None] + offs
        gy = torch.ceil(cy - r)[:, None] + offs
        dx2 = torch.where((gx >= 0) & (gx < w), (gx - cx[:, None]).square(), torch.inf)
        dy2 = torch.where((gy >= 0) & (gy < h), (gy - cy[:, None]).square(), torch.inf)
        inside = dx2[:, None, :] + dy2[:, :, None] < r.square()[:, None, None]
        pix = gy.int()[:, :, None] * w + gx.int()[:, None, :]
        pix = torch.where(inside, pix, -1).view(-1)
        if where is None:
            cand_pixel = pix
        else:
            at = offset.index_select(0, where)[:, None] + torch.arange(s * s, device=device)
            cand_pixel[at.view(-1)] = pix
    cand_point = torch.repeat_interleave(order, slots, output_size=total)
    hit = cand_pixel >= 0
    cand_pixel, cand_point = cand_pixel.masked_select(hit), cand_point.masked_select(hit)
    if cand_point.numel() == 0:
        return torch.full((h * w, k), -1, dtype=torch.long, device=device)
    pixel, perm = torch.sort(cand_pixel, stable=True)
    point = cand_point[perm]
    bounds = torch.searchsorted(pixel, torch.arange(h * w + 1, dtype=torch.int32, device=device))
    start, count = bounds[:-1], bounds[1:] - bounds[:-1]
    slot = torch.arange(k, device=device)
    at = (start[:, None] + slot).clamp(max=point.numel() - 1)
    return torch.where(slot < count[:, None], point.index_select(0, at.view(-1)).view(h * w, k), -1)


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
