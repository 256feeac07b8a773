"""Differentiable point splatting: the K nearest points per pixel, alpha-composited.

The semantics, in pixels (PyTorch3D's ``PointsRasterizer`` + ``AlphaCompositor`` for the
coverage and the order, with our opacity profile and surfaces):

* a point covers the pixels whose centres lie within its radius ``r`` (strictly, ``d < r``);
* each pixel keeps the ``K`` covering points nearest to the camera (smallest ``z``; ties go
  to the lower point index);
* point ``k`` of a pixel has opacity ``a_k = 1 - (d_k^2 / r_k^2)^2`` (:func:`point_opacity`);
* consecutive points of a pixel (in that order) that lie on one surface (the same
  ``surface`` id, and depth within ``1 + SURFACE_DEPTH`` of the first of them) form one
  fragment of opacity ``a_s = 1 - prod_{k in s} (1 - a_k)``, which its points share in
  proportion to their bilinear weights ``b_k = (1 - |dx_k| / r_k) (1 - |dy_k| / r_k)``
  (``dx, dy``: from the point to the pixel centre): point ``k`` of fragment ``s`` has
  weight ``a_s * b_k / sum_{j in s} b_j * prod_{s' before s} (1 - a_s')`` (fragments
  composited front to back). Without surface ids every point is a fragment of its own, and
  the weight is PyTorch3D's ``a_k * prod_{j<k} (1 - a_j)``;
* the output is the weighted sum of features, and the accumulated opacity
  ``1 - prod_k (1 - a_k)`` (the same either way).

Why: the point cloud samples each layer once a pixel, and a point's radius is that spacing
as seen from the camera (:mod:`cinemagraph.render.pointcloud`), so a layer's surface is a
lattice of points one radius apart. Off the pixel grid (moved by the flow, or seen from a
moved camera) such a lattice must stay opaque. With PyTorch3D's usual ``1 - d^2 / r^2`` it
does not: a pixel centre half-way between four points keeps ``(1/2)^4`` of what lies
behind, one half-way between two keeps ``(1/4)^2``: 6.25% (7% at the worst place in a
cell). Behind a layer lie the inpainted parts of the farther ones; the leak drew their
edges (straight: the holes are dilated squares) as seams across the fluid, and beat with
the pixel grid into regular dots where the camera enlarges the lattice. With
``1 - (d^2 / r^2)^2`` those pixels keep ``(1/4)^4`` and ``(1/16)^2``: 0.4% (0.5% at worst).
The support is the same (the same points, the same ``K``), and a point at a pixel centre is
still opaque there while its neighbours, ``r`` away, do not reach it, so the source view is
the photo. A profile this flat would let the nearest point of a surface take most of a
pixel, whichever of its neighbours is closer to the pixel centre (the order is by depth,
and a surface's neighbouring points differ in depth by its slope), and moving textures
would snap to the points' lattice; within a surface the points are therefore blended in
no order, by bilinear weights (a lattice one radius apart is then resampled as bilinear
interpolation resamples an image), and only surfaces occlude one another. The renderer
gives each layer of the layered depth image as a surface
(:mod:`cinemagraph.render.pipeline`); the depth tolerance keeps apart the parts of one
layer that occlude each other.

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
#: Points of one surface at a pixel lie within this fraction of the depth of the nearest of
#: them; farther ones are a part of the surface that the nearer ones occlude. Neighbouring
#: points of a sloped layer differ by a few percent (the waterfall sample's layers: 99% of
#: vertically neighbouring pixels within 3.3% at 1280 pixels, 7.5% at 640); parts of a layer
#: that pass in front of each other closer than this blend as one surface.
SURFACE_DEPTH = 0.05


class SplatOutput(NamedTuple):
    """``features``: ``(1, C, H, W)`` composited (premultiplied); ``alpha``: ``(1, 1, H, W)``."""

    features: Tensor
    alpha: Tensor


def _check(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
           surface: Tensor | None = None) -> None:
    check_shape("xy", xy, (None, 2))
    n = xy.shape[0]
    check_shape("z", z, (n,))
    check_shape("radius", radius, (n,))
    check_shape("features", features, (n, None))
    if surface is not None:
        check_shape("surface", surface, (n,))


def splat_points(xy: Tensor, z: Tensor, radius: Tensor, features: Tensor,
                 size: tuple[int, int], points_per_pixel: int = 8,
                 surface: Tensor | None = None) -> SplatOutput:
    """Return the splatted ``features`` and opacity of points at pixels ``xy (N, 2)``.

    ``z (N,)`` is camera depth, ``radius (N,)`` the footprint in pixels, ``features (N, C)``,
    ``surface (N,)`` integer ids of the surfaces the points sample (None: every point its
    own). ``size = (H, W)``. See the module docstring for the semantics.
    """
    _check(xy, z, radius, features, surface)
    h, w = size
    n, c = features.shape
    if n == 0:
        return SplatOutput(features.new_zeros(1, c, h, w), xy.new_zeros(1, 1, h, w))
    with torch.no_grad():
        table, valid = _table(xy, z, radius, h, w, points_per_pixel)
    weights, opacity = _weights(xy, z, radius, surface, table, valid, h, w)
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
               points_per_pixel: int = 8, surface: Tensor | None = None) -> SplatPlan:
    """Return the :class:`SplatPlan` of points at ``xy (N, 2)`` (arguments as
    :func:`splat_points`; at least one point)."""
    _check(xy, z, radius, z[:, None], surface)
    h, w = size
    table, valid = _table(xy, z, radius, h, w, points_per_pixel)
    weights, opacity = _weights(xy, z, radius, surface, table, valid, h, w)
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


def _weights(xy: Tensor, z: Tensor, radius: Tensor, surface: Tensor | None, table: Tensor,
             valid: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Compositing weights ``(H*W, K)`` and accumulated opacity ``(H*W,)``; differentiable
    with respect to ``xy`` and ``radius``."""
    k = table.shape[1]
    flat = table.view(-1)
    pixel = torch.arange(h * w, device=xy.device)
    px = (pixel % w).to(xy.dtype)[:, None]
    py = (pixel // w).to(xy.dtype)[:, None]
    # (index_select rather than advanced indexing: the same values, several times faster on
    # CPUs.)
    x, y = xy.unbind(1)
    dx = px - x.index_select(0, flat).view(h * w, k)
    dy = py - y.index_select(0, flat).view(h * w, k)
    r = radius.index_select(0, flat).view(h * w, k)
    alpha = torch.where(valid, point_opacity(dx.square() + dy.square(), r.square()), 0.0)
    if surface is None:
        return composite_weights(alpha)
    share = torch.where(valid, (1.0 - dx.abs() / r) * (1.0 - dy.abs() / r), 0.0)
    with torch.no_grad():
        depth = z.index_select(0, flat).view(h * w, k)
        ids = surface.index_select(0, flat).view(h * w, k)
    return composite_weights(alpha, depth, ids, share)


def composite_weights(alpha: Tensor, depth: Tensor | None = None,
                      surface: Tensor | None = None,
                      share: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Return the weights ``(P, K)`` of ``P`` pixels' ``K`` points, nearest first, of opacity
    ``alpha (P, K)`` (0 in empty slots), and the accumulated opacity ``(P,)``.

    Points of one surface (``surface (P, K)`` ids, ``depth (P, K)``) share their fragment's
    opacity in proportion to ``share (P, K)`` (> 0 where ``alpha`` is; default ``alpha``);
    without surfaces, plain front-to-back compositing (the module docstring).
    Differentiable with respect to ``alpha`` and ``share``.
    """
    share = alpha if share is None else share
    p, k = alpha.shape
    # K elementwise steps rather than a scan along rows of length K: K is small, and a scan
    # is slower on GPUs.
    transmit = torch.ones(p, dtype=alpha.dtype, device=alpha.device)
    if surface is None:
        weights = []
        for j in range(k):
            weights.append(alpha[:, j] * transmit)
            transmit = transmit * (1.0 - alpha[:, j])
        return torch.stack(weights, 1), 1.0 - transmit
    with torch.no_grad():
        starts = torch.ones_like(alpha, dtype=torch.bool)
        first = depth[:, 0]
        for j in range(1, k):
            starts[:, j] = (surface[:, j] != surface[:, j - 1]) \
                | (depth[:, j] > first * (1.0 + SURFACE_DEPTH))
            first = torch.where(starts[:, j], depth[:, j], first)
    # Front to back: the transmittance in front of each point's fragment, and the fragment's
    # own transmittance and sum of shares up to the point.
    before, kept, summed = [], [], []
    for j in range(k):
        new = starts[:, j]
        front = transmit if j == 0 else torch.where(new, transmit, before[-1])
        keep = 1.0 - alpha[:, j]
        kept.append(keep if j == 0 else torch.where(new, keep, kept[-1] * keep))
        summed.append(share[:, j] if j == 0 else torch.where(new, share[:, j],
                                                              summed[-1] + share[:, j]))
        before.append(front)
        transmit = transmit * keep
    # Back to front: every point gets its whole fragment's transmittance and sum of shares.
    weights = [None] * k
    for j in range(k - 1, -1, -1):
        if j == k - 1:
            keep, total = kept[j], summed[j]
        else:
            last = starts[:, j + 1]
            keep, total = torch.where(last, kept[j], keep), torch.where(last, summed[j], total)
        weights[j] = before[j] * (1.0 - keep) * share[:, j] / total.clamp_min(1e-12)
    return torch.stack(weights, 1), 1.0 - transmit


def point_opacity(d2: Tensor, r2: Tensor) -> Tensor:
    """Return a point's opacity ``1 - (d^2 / r^2)^2`` at squared distance ``d2`` from its
    centre, for its squared radius ``r2`` (0 from ``d = r`` on; why this profile: the module
    docstring)."""
    return 1.0 - (d2 / r2).clamp(0.0, 1.0).square()


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
                           size: tuple[int, int], points_per_pixel: int = 8,
                           surface: Tensor | None = None) -> SplatOutput:
    """Return the same as :func:`splat_points`, computed pixel by pixel (slow; for tests)."""
    _check(xy, z, radius, features, surface)
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
            cand = cand[torch.argsort(z[cand].detach(), stable=True)][:points_per_pixel].tolist()
            # Fragments: runs of points of one surface, within SURFACE_DEPTH of the first.
            fragments = []
            for p in cand:
                if (fragments and surface is not None and surface[p] == surface[fragments[-1][-1]]
                        and z[p] <= z[fragments[-1][0]] * (1.0 + SURFACE_DEPTH)):
                    fragments[-1].append(p)
                else:
                    fragments.append([p])
            color = torch.zeros(c, dtype=features.dtype, device=xy.device)
            transmit = torch.ones((), dtype=xy.dtype, device=xy.device)
            for fragment in fragments:
                a = [1.0 - (d2[p] / radius[p].square()) ** 2 for p in fragment]
                opacity = 1.0 - torch.stack([1.0 - v for v in a]).prod()
                if len(fragment) == 1:
                    share = a
                else:  # bilinear weights
                    share = [(1.0 - (xy[p, 0] - x).abs() / radius[p])
                             * (1.0 - (xy[p, 1] - y).abs() / radius[p]) for p in fragment]
                total = torch.stack(share).sum()
                for p, v in zip(fragment, share):
                    color = color + transmit * opacity * v / total * features[p]
                transmit = transmit * (1.0 - opacity)
            rows.append(color)
            alphas.append(1.0 - transmit)
    out = torch.stack(rows).transpose(0, 1).reshape(1, c, h, w)
    return SplatOutput(out, torch.stack(alphas).view(1, 1, h, w))
