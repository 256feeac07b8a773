"""The 3D symmetric animation blending weight."""

from __future__ import annotations

import torch
from torch import Tensor


def symmetric_blend_weight(alpha_f: Tensor, depth_f: Tensor, alpha_b: Tensor, depth_b: Tensor,
                           time: float) -> Tensor:
    """Return the weight ``W_t (1, 1, H, W)`` of the forward splat at ``time = t / N``.

    ``W_t = (1 - t/N) a_f e^(-D_f) / ((1 - t/N) a_f e^(-D_f) + (t/N) a_b e^(-D_b))`` with
    opacities ``a`` and composited depths ``D``; computed as a logistic function of the log
    ratio so that large depths do not underflow. ``W = 1`` at ``t = 0`` and ``0`` at ``t = N``;
    where neither splat covers a pixel the weight follows time alone.
    """
    tiny = 1e-30
    lf = torch.log(((1.0 - time) * alpha_f).clamp_min(tiny)) - torch.nan_to_num(depth_f)
    lb = torch.log((time * alpha_b).clamp_min(tiny)) - torch.nan_to_num(depth_b)
    weight = torch.sigmoid(lf - lb)
    if time <= 0.0:
        return torch.ones_like(weight)
    if time >= 1.0:
        return torch.zeros_like(weight)
    empty = (alpha_f <= 0) & (alpha_b <= 0)
    return torch.where(empty, torch.full_like(weight, 1.0 - time), weight)
