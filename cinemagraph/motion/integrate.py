"""Displacement over time from an Eulerian motion field, by recursive Euler integration."""

from __future__ import annotations

import torch
from torch import Tensor

from ..conventions import bilinear_sample, check_shape


def integrate_displacements(flow: Tensor, points: Tensor, steps: int) -> Tensor:
    """Return the displacements ``(steps + 1, N, 2)`` of ``points (N, 2)`` moved by ``flow``.

    ``F_0 = 0`` and ``F_t(x0) = F_{t-1}(x0) + M(x0 + F_{t-1}(x0))``: the Euler integration of
    the paper, computed incrementally (``steps`` samplings in all, not one integration per
    frame). ``M = flow (1, 2, H, W)`` is sampled bilinearly at sub-pixel positions. The field
    is zero outside the image, so a point that leaves the image keeps its last displacement
    (it moves on off-screen no further), and a point in a still region never moves. Pass
    ``-flow`` for the backward displacements of 3D symmetric animation.
    """
    check_shape("flow", flow, (1, 2, None, None))
    check_shape("points", points, (None, 2))
    out = torch.zeros(steps + 1, points.shape[0], 2, dtype=flow.dtype, device=flow.device)
    for t in range(1, steps + 1):
        out[t] = out[t - 1] + bilinear_sample(flow, points + out[t - 1], padding="zeros")
    return out
