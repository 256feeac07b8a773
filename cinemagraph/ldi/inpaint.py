"""Inpainting of one layer's hidden region: the interface and the built-in method."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from ..filters import push_pull_fill


class Inpainter(Protocol):
    """Fills a layer's hole from its context; the learned 3D-Photo networks plug in here.

    Arguments: ``color (1, 3, H, W)``, ``depth (1, 1, H, W)``, ``context (1, 1, H, W)`` bool
    (pixels to copy from: this layer and what lies behind it), ``hole (1, 1, H, W)`` bool.
    Returns ``(color, depth)`` with the hole filled; other pixels are ignored by the caller.
    """

    description: str

    def __call__(self, color: Tensor, depth: Tensor, context: Tensor,
                 hole: Tensor) -> tuple[Tensor, Tensor]: ...


class PushPullInpainter:
    """Fills colour and log-depth by push-pull diffusion from the context only.

    Fast and weight-free; holes get a smooth continuation of their surroundings. Because only
    the context (this layer and farther ones) is read, the depth in the hole continues the
    background and is never pulled towards the nearer layer that hides it.
    """

    description = "built-in push-pull inpainting"

    def __call__(self, color: Tensor, depth: Tensor, context: Tensor,
                 hole: Tensor) -> tuple[Tensor, Tensor]:
        weight = context.to(color.dtype)
        filled = push_pull_fill(torch.cat([color, depth.log()], dim=1), weight)
        return filled[:, :3].clamp(0, 1), filled[:, 3:].exp()
