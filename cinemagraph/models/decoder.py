"""Turning the two splatted clouds of a frame into a picture."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from torch import Tensor

from ..filters import push_pull_fill
from ..render.blend import symmetric_blend_weight


class SplattedFrame(NamedTuple):
    """One splatted cloud: ``features (1, C, H, W)`` premultiplied by opacity,
    ``alpha (1, 1, H, W)`` accumulated opacity, ``depth (1, 1, H, W)`` composited z-depth
    (opacity-normalised; undefined where ``alpha`` is 0)."""

    features: Tensor
    alpha: Tensor
    depth: Tensor


class Decoder(Protocol):
    """Maps the forward and backward splats of frame ``t`` (``time = t / N``) to RGB
    ``(1, 3, H, W)``. The learned image decoder plugs in here."""

    description: str

    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None,
                 time: float) -> Tensor: ...


class CompositingDecoder:
    """Blends the two splats by the symmetric weight, normalises colour by coverage and
    fills what no point covers by push-pull from the covered neighbourhood.

    Expects features whose first four channels are premultiplied RGB and coverage
    (:class:`~cinemagraph.models.features.RGBDisparityFeatures`).
    """

    description = "built-in compositing decoder (blend, normalise, fill holes)"

    def __init__(self, full_coverage: float = 0.5):
        #: Pixels with at least this opacity keep their colour; thinner ones are filled.
        self.full_coverage = full_coverage

    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None,
                 time: float) -> Tensor:
        if backward is None:
            features = forward.features
        else:
            weight = symmetric_blend_weight(forward.alpha, forward.depth, backward.alpha,
                                            backward.depth, time)
            features = weight * forward.features + (1.0 - weight) * backward.features
        coverage = features[:, 3:4]
        color = features[:, :3] / coverage.clamp_min(1e-6)
        confidence = (coverage / self.full_coverage).clamp(0.0, 1.0)
        return push_pull_fill(color, confidence).clamp(0.0, 1.0)
