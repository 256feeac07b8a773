"""Image-space operations shared by several stages: hole filling and binary morphology.

Edge-aware smoothing comes from :mod:`kornia.filters` (``guided_blur``); what lives here is
what kornia does not offer (push-pull filling) or does measurably slower for our case (binary
dilation of boolean masks: ``max_pool2d`` is one pass, kornia's grey-scale morphology unfolds
the whole neighbourhood; wide max and mean filters at a cost that does not grow with their
width, where ``max_pool2d`` and ``avg_pool2d`` pay for every pixel of the window).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def push_pull_fill(values: Tensor, weight: Tensor) -> Tensor:
    """Return ``values (B, C, H, W)`` with the pixels of zero ``weight (B, 1, H, W)`` filled.

    Push-pull (Gortler et al. 1996): a pyramid of weighted averages is built down to one
    pixel, then each level is filled from the one above it, so holes take a smooth blend of
    the values around them, from near to far. Pixels with ``weight >= 1`` keep their values;
    weights in between blend. Deterministic, linear in the number of pixels, on any device.
    Where the whole image has zero weight the result is zero.
    """
    weight = weight.clamp(0.0, 1.0).to(values.dtype)
    levels = [(values * weight, weight)]
    while max(levels[-1][1].shape[-2:]) > 1:
        vw, w = levels[-1]
        # Sum-pooling (avg * 4) counts every contributing pixel; the ratio vw / w is an average.
        vw = F.avg_pool2d(vw, 2, ceil_mode=True) * 4.0
        w = F.avg_pool2d(w, 2, ceil_mode=True) * 4.0
        levels.append((vw, w))
    filled = None
    for vw, w in reversed(levels):
        mean = vw / w.clamp_min(1e-12)
        conf = w.clamp(0.0, 1.0)
        if filled is None:
            filled = mean * conf
        else:
            up = F.interpolate(filled, size=vw.shape[-2:], mode="bilinear", align_corners=False)
            filled = conf * mean + (1.0 - conf) * up
    return filled


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Return the boolean ``mask (B, 1, H, W)`` dilated by a square of half-size ``radius``.

    Computed as separable box counts from cumulative sums, exact in integers: the cost does
    not grow with ``radius`` (a max-pool's does, quadratically: 7 s on a 2-core CPU at
    1280x720 for the margin the layer builder uses, against 0.04 s here).
    """
    if radius <= 0:
        return mask.bool()
    return _box_count(_box_count(mask.to(torch.int32), radius, 3), radius, 2) > 0


def _box_count(x: Tensor, before: int, dim: int, after: int | None = None) -> Tensor:
    """Return the sums of ``x`` over ``[i - before, i + after]`` along ``dim`` (``after``
    defaults to ``before``: a centred window), zero-padded, from cumulative sums."""
    after = before if after is None else after
    n = x.shape[dim]
    shape = list(x.shape)
    shape[dim] = 1
    total = torch.cat([torch.zeros(shape, dtype=x.dtype, device=x.device), x.cumsum(dim)], dim)
    index = torch.arange(n, device=x.device)
    return (total.index_select(dim, (index + after + 1).clamp(max=n))
            - total.index_select(dim, (index - before).clamp(min=0)))


def max_filter(x: Tensor, size: int) -> Tensor:
    """Return ``x (..., H, W)`` max-filtered over centred ``size x size`` windows (``size``
    odd; pixels past the border do not count), as ``max_pool2d(x, size, 1, size // 2)`` makes
    it, exactly, separably. On the CPU at a cost that does not grow with ``size``: each row
    and column by the van Herk / Gil-Werman running maximum (prefix and suffix maxima over
    blocks of ``size``: three comparisons a pixel whatever the width). On a GPU by max-pools,
    which are the faster there (one kernel against the running maximum's several:
    ``benchmarks/bench_spacetime.py``)."""
    if size % 2 != 1:
        raise ValueError(f"max_filter needs an odd size, not {size}")
    if x.device.type != "cpu":
        return _pooled_max(x, size)
    return _running_max(_running_max(x, size, -1), size, -2)


def _pooled_max(x: Tensor, size: int) -> Tensor:
    p = size // 2
    return F.max_pool2d(F.max_pool2d(x, (1, size), 1, (0, p)), (size, 1), 1, (p, 0))


def _running_max(x: Tensor, size: int, dim: int) -> Tensor:
    if size == 1:
        return x
    x = x.movedim(dim, -1)
    n, pad = x.shape[-1], size // 2
    blocks = -(-(n + 2 * pad) // size)
    padded = F.pad(x, (pad, blocks * size - n - pad), value=float("-inf"))
    grouped = padded.unflatten(-1, (blocks, size))
    prefix = grouped.cummax(-1).values.flatten(-2)
    suffix = grouped.flip(-1).cummax(-1).values.flip(-1).flatten(-2)
    # The window of output i is padded[i : i + size]: the suffix maximum from i to its
    # block's end and the prefix maximum from the next block's start to i + size - 1.
    out = torch.maximum(suffix[..., :n], prefix[..., size - 1:size - 1 + n])
    return out.movedim(-1, dim)


def box_mean(x: Tensor, size: int) -> Tensor:
    """Return ``x (..., H, W)`` averaged over centred ``size x size`` windows (``size`` odd),
    over the part of each window inside the frame, as ``avg_pool2d(x, size, 1, size // 2,
    count_include_pad=False)`` makes it, separably. On the CPU at a cost that does not grow
    with ``size``, from cumulative sums in float64 (within float32's rounding of the exact
    mean; the pool's own float32 sums are off by up to 4e-6 at 191 px). On a GPU by
    average-pools, as :func:`max_filter`."""
    if size % 2 != 1:
        raise ValueError(f"box_mean needs an odd size, not {size}")
    if x.device.type != "cpu":
        return _pooled_mean(x, size)
    return _cumulative_mean(x, size)


def _pooled_mean(x: Tensor, size: int) -> Tensor:
    p = size // 2
    x = F.avg_pool2d(x, (1, size), 1, (0, p), count_include_pad=False)
    return F.avg_pool2d(x, (size, 1), 1, (p, 0), count_include_pad=False)


def _cumulative_mean(x: Tensor, size: int) -> Tensor:
    r = size // 2
    out = x.double()
    for dim in (out.dim() - 1, out.dim() - 2):
        n = out.shape[dim]
        index = torch.arange(n, device=x.device)
        count = ((index + r).clamp(max=n - 1) - (index - r).clamp(min=0) + 1).double()
        shape = [1] * out.dim()
        shape[dim] = n
        out = _box_count(out, r, dim) / count.view(shape)
    return out.to(x.dtype)


def erode(mask: Tensor, radius: int) -> Tensor:
    """Return the boolean ``mask (B, 1, H, W)`` eroded by a square of half-size ``radius``."""
    if radius <= 0:
        return mask.bool()
    return ~dilate(~mask.bool(), radius)


def erode_square(mask: Tensor, size: int) -> Tensor:
    """Return the boolean ``mask (B, 1, H, W)`` eroded by a ``size`` x ``size`` square anchored
    as kornia's (and OpenCV's) morphology anchors it, at ``size // 2``: a pixel stays where
    its window ``[-(size // 2), size - size // 2 - 1]`` (rows and columns) lies in the mask.
    For odd sizes this is :func:`erode` of radius ``size // 2``; for even sizes the window
    reaches one pixel further up and left than down and right. Pixels past the image border
    count as inside the mask (kornia's "geodesic" border)."""
    if size <= 1:
        return mask.bool()
    before, after = size // 2, size - size // 2 - 1
    outside = (~mask.bool()).to(torch.int32)
    count = _box_count(_box_count(outside, before, 3, after), before, 2, after)
    return count == 0


def masked_median(values: Tensor, mask: Tensor, where: Tensor, size: int) -> Tensor:
    """Return ``values (1, 1, H, W)`` with the pixels of ``where`` replaced by the median of the
    ``mask``ed values in their ``size`` x ``size`` window (odd ``size``; the lower median for an
    even count, as :func:`torch.median`). Pixels with no masked value in the window keep
    their value."""
    _, _, h, w = values.shape
    r = size // 2
    at = where.view(-1).nonzero().squeeze(1)
    if at.numel() == 0:
        return values
    wp = w + 2 * r
    offsets = torch.arange(-r, r + 1, device=values.device)
    neighbours = (offsets[:, None] * wp + offsets[None, :]).view(-1)
    centre = (at // w + r) * wp + at % w + r
    index = centre[:, None] + neighbours
    v = F.pad(values, (r,) * 4).view(-1)[index]
    m = F.pad(mask.to(values.dtype), (r,) * 4).view(-1)[index] > 0
    count = m.sum(1)
    ordered = torch.sort(torch.where(m, v, torch.full_like(v, float("inf"))), dim=1).values
    pick = ((count - 1).clamp(min=0) // 2)[:, None]
    median = torch.gather(ordered, 1, pick)[:, 0]
    out = values.flatten().clone()
    out[at] = torch.where(count > 0, median, out[at])
    return out.view_as(values)


#: Neighbourhood samples :func:`joint_weighted_median` holds at once (pixels x window).
_CHUNK = 1 << 22


def joint_weighted_median(values: Tensor, guide: Tensor, radius: int = 3,
                          sigma_color: float = 0.08, iterations: int = 1,
                          min_contrast: float = 0.05) -> Tensor:
    """Return positive ``values (1, 1, H, W)`` replaced by their colour-weighted local median.

    Each pixel takes the weighted median of the values in its ``(2 radius + 1)^2``
    neighbourhood, the weight of a neighbour being ``exp(-|g - g_0|^2 / (2 sigma_color^2))``
    for colours ``guide (1, C, H, W)`` in ``[0, 1]``. A median never averages across an edge,
    so a depth map whose discontinuities are blurred or misplaced (a resized or low-resolution
    depth file) gets steps where the photo has colour edges: this is the depth-edge sharpening
    that precedes layering in 3D photography (Shih et al. 2020 filter there too). Only pixels
    whose neighbourhood spans at least ``min_contrast`` of the image's value range (2nd to
    98th percentile) are filtered (elsewhere a median barely changes anything), which keeps
    the cost to the pixels near edges. Each iteration moves an edge by at most ``radius``
    pixels.
    """
    _, _, h, w = values.shape
    k = 2 * radius + 1
    offsets = torch.arange(-radius, radius + 1, device=values.device)
    # Neighbour offsets in the flattened padded image, centre in the middle.
    wp = w + 2 * radius
    neighbours = (offsets[:, None] * wp + offsets[None, :]).view(-1)
    sample = values.flatten()[:: max(1, values.numel() // 100000)]
    value_range = torch.quantile(sample, 0.98) - torch.quantile(sample, 0.02)
    for _ in range(iterations):
        high = F.max_pool2d(values, k, stride=1, padding=radius)
        low = -F.max_pool2d(-values, k, stride=1, padding=radius)
        edge = ((high - low) >= min_contrast * value_range).view(-1).nonzero().squeeze(1)
        if edge.numel() == 0:
            break
        vpad = F.pad(values, (radius,) * 4, mode="replicate").view(-1)
        gpad = F.pad(guide, (radius,) * 4, mode="replicate").flatten(2)[0]  # (C, (H+2r)(W+2r))
        out = values.flatten().clone()
        for part in edge.split(max(1, _CHUNK // (k * k))):  # bounded memory at large radii
            centre = (part // w + radius) * wp + part % w + radius
            at = centre[:, None] + neighbours  # (M, k*k)
            g = gpad[:, at]  # (C, M, k*k)
            weight = torch.exp(-(g - gpad[:, centre, None]).square().sum(0)
                               / (2.0 * sigma_color ** 2))
            sorted_v, order = torch.sort(vpad[at], dim=1)
            cum = torch.cumsum(torch.gather(weight, 1, order), dim=1)
            pick = (cum < 0.5 * cum[:, -1:]).sum(1, keepdim=True).clamp(max=k * k - 1)
            out[part] = torch.gather(sorted_v, 1, pick)[:, 0]
        values = out
        values = values.view(1, 1, h, w)
    return values
