"""The depth estimator interface and the normalisation every depth map goes through."""

from __future__ import annotations

import logging
from typing import Protocol

import torch
from torch import Tensor

from ..conventions import check_shape
from ..errors import UserError
from ..filters import push_pull_fill

log = logging.getLogger(__name__)

#: Depth is normalised so that this quantile is 1 (the scene's "near depth").
NEAR_QUANTILE = 0.02
#: Far depth is clamped to this multiple of the near depth; beyond it parallax is below a
#: hundredth of the near parallax, and the cap keeps exp(-depth) blending well conditioned.
MAX_DEPTH_RATIO = 100.0


class DepthEstimator(Protocol):
    """Anything that maps a photo ``(1, 3, H, W)`` in ``[0, 1]`` to z-depth ``(1, 1, H, W) > 0``."""

    #: Shown in the log, e.g. "built-in ground-plane prior".
    description: str

    def __call__(self, image: Tensor) -> Tensor: ...


def repair_depth(depth: Tensor, source: str = "depth map") -> Tensor:
    """Return ``depth (1, 1, H, W)`` with NaN, infinite, zero and negative values filled.

    Invalid values are filled from their valid neighbours (push-pull) with a warning. Raises
    :class:`UserError` when too little is valid to repair (under 10 % of the pixels).
    """
    check_shape("depth", depth, (1, 1, None, None))
    valid = torch.isfinite(depth) & (depth > 0)
    fraction = valid.float().mean().item()
    if fraction == 1.0:
        return depth
    if fraction < 0.1:
        raise UserError(f"{source} has only {100 * fraction:.1f}% finite positive values: give a "
                        "depth map with valid (finite, > 0) depth for most pixels")
    bad = []
    if torch.isnan(depth).any():
        bad.append("NaN")
    if torch.isinf(depth).any():
        bad.append("infinite")
    if (depth == 0).any():
        bad.append("zero")
    if (depth < 0).any():
        bad.append("negative")
    log.warning("%s: %.1f%% of the pixels are %s; filled from their neighbours", source,
                100 * (1 - fraction), "/".join(bad))
    clean = torch.where(valid, depth, torch.zeros_like(depth))
    return push_pull_fill(clean, valid.float()).clamp_min(depth[valid].min().item())


def median_depth(depth: Tensor) -> float:
    """The median of the positive values of ``depth`` (any shape; strided to about 100,000
    values): the depth camera paths orbit and dolly around."""
    d = depth.flatten()
    step = max(1, d.numel() // 100000)
    return float(torch.quantile(d[d > 0][::step].float(), 0.5))


def normalize_depth(depth: Tensor) -> Tensor:
    """Return ``depth (1, 1, H, W)`` scaled so its near depth is 1 and clamped to ``[0.5, 100]``.

    The scale of single-image depth is arbitrary; fixing it makes camera paths and blending
    behave the same on every photo. See :mod:`cinemagraph.conventions`.
    """
    near = torch.quantile(depth.flatten()[:: max(1, depth.numel() // 1_000_000)].float(),
                          NEAR_QUANTILE)
    return (depth / near.clamp_min(1e-12)).clamp(0.5, MAX_DEPTH_RATIO)
