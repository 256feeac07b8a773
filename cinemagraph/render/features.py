"""Point features of the layered depth image."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from ..ldi.scene import LayeredDepthImage


class FeatureExtractor(Protocol):
    """Maps a :class:`LayeredDepthImage` to per-pixel features ``(L, C, H, W)`` of each layer."""

    description: str
    channels: int

    def __call__(self, ldi: LayeredDepthImage) -> Tensor: ...


class RGBDisparityFeatures:
    """Returns ``(L, 5, H, W)``: RGB, a constant 1 (so splatting yields coverage) and the
    disparity normalised by the scene's largest disparity."""

    description = "built-in RGBA + disparity features"
    channels = 5

    def __call__(self, ldi: LayeredDepthImage) -> Tensor:
        disparity = 1.0 / ldi.depth
        disparity = disparity / disparity[ldi.coverage].max().clamp_min(1e-12)
        ones = torch.ones_like(ldi.depth)
        return torch.cat([ldi.color, ones, disparity], dim=1)
