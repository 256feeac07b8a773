"""Sparse hints to a dense motion field by Gaussian radial-basis interpolation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..conventions import pixel_grid
from .fade import fade_at_mask_edge
from .field import MotionField
from .hints import MotionHints


@dataclass
class HintInterpolator:
    """Return a :class:`MotionField` from :class:`MotionHints` without a learned network.

    Each pixel of the moving region takes the Gaussian-weighted average of the hint vectors
    (normalised radial basis functions), with the kernel width ``sigma`` a fixed fraction of
    the image's long side. The original draws the width at random; we do not, so the same
    input always gives the same field. The field is then masked, box-blurred and masked
    again, as the original post-processes its network's output, faded to zero speed at the
    mask's edge (:mod:`.fade`: the blur alone leaves 3/5 of the speed on the edge pixels, a
    tear) and multiplied by ``flow_scale``.
    """

    sigma: float = 0.15
    blur: int = 5
    flow_scale: float = 1.0
    description: str = "hint interpolation (Gaussian radial basis functions)"

    def __call__(self, hints: MotionHints, size: tuple[int, int], device=None) -> MotionField:
        h, w = size
        mask = hints.mask
        if mask is None:
            mask = torch.ones(1, 1, h, w, dtype=torch.bool)
        mask = mask.to(device)
        if len(hints) == 0:
            return MotionField(torch.zeros(1, 2, h, w, device=device), mask)
        grid = pixel_grid(h, w, device=device).view(2, -1).transpose(0, 1)  # (HW, 2)
        points = hints.points.to(device)
        sigma = self.sigma * max(h, w)
        sq = torch.cdist(grid, points).square()  # (HW, N)
        weights = torch.softmax(-sq / (2 * sigma * sigma), dim=1)  # stable normalised RBF
        flow = (weights @ hints.vectors.to(device)).transpose(0, 1).reshape(1, 2, h, w)
        flow = flow * mask
        if self.blur > 1:
            from kornia.filters import box_blur

            flow = box_blur(flow, (self.blur, self.blur)) * mask
        flow = fade_at_mask_edge(flow, mask)
        return MotionField(flow * self.flow_scale, mask)
