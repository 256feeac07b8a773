"""The motion field value passed between stages, and the interface of motion estimators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ..conventions import check_shape


@dataclass
class MotionField:
    """An Eulerian motion field on the source image (see :mod:`cinemagraph.conventions`).

    ``flow``: ``(1, 2, H, W)`` pixels per frame, zero outside ``mask``.
    ``mask``: ``(1, 1, H, W)`` bool, the region allowed to move.
    The motion stage's fields fade to zero speed across a band inside the mask's edge
    (:mod:`.fade`); the pipeline takes any field as it is.
    """

    flow: Tensor
    mask: Tensor

    def __post_init__(self):
        check_shape("flow", self.flow, (1, 2, None, None))
        check_shape("mask", self.mask, (1, 1) + tuple(self.flow.shape[-2:]))

    @classmethod
    def static(cls, height: int, width: int, device=None) -> "MotionField":
        """Return a field in which nothing moves."""
        return cls(torch.zeros(1, 2, height, width, device=device),
                   torch.zeros(1, 1, height, width, dtype=torch.bool, device=device))

    @property
    def is_static(self) -> bool:
        return not bool(self.flow.abs().amax() > 0)

    def to(self, device) -> "MotionField":
        return MotionField(self.flow.to(device), self.mask.to(device))


class MotionEstimator(Protocol):
    """Anything that maps a photo and hints to a :class:`MotionField` (the motion network)."""

    description: str

    def __call__(self, image: Tensor, hints) -> MotionField: ...
