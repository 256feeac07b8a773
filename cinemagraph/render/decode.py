"""Turning the two splatted clouds of a frame into a picture."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from ..filters import push_pull_fill
from .blend import symmetric_blend_weight


class SplattedFrame(NamedTuple):
    """One splatted cloud: ``features (1, C, H, W)`` premultiplied by opacity,
    ``alpha (1, 1, H, W)`` accumulated opacity, ``depth (1, 1, H, W)`` composited z-depth
    (opacity-normalised; undefined where ``alpha`` is 0), and ``displacement
    (1, 2, H, W)``, where known: how far, in pixels ``(x, y)``, the points seen at a pixel
    have moved from their pixels in the photo (composited and normalised as the depth; zero
    at the source camera before anything moves), and ``moving (1, 1, H, W)``, where known:
    the share of that opacity from points that the motion field moves (the fluid; 0 in a
    static scene), composited and normalised as the depth."""

    features: Tensor
    alpha: Tensor
    depth: Tensor
    displacement: Tensor | None = None
    moving: Tensor | None = None


class Decoder(Protocol):
    """Maps the forward and backward splats of frame ``t`` (``time = t / N``) to RGB
    ``(1, 3, H, W)``. The learned image decoder plugs in here. A decoder whose
    ``reads_displacement`` is true gets the splats' ``displacement`` (it costs a splat two
    more channels, so others go without)."""

    description: str

    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None,
                 time: float) -> Tensor: ...


class CompositingDecoder:
    """Blends the two splats by the symmetric weight, normalises colour by coverage and
    fills what no point covers by push-pull from the covered neighbourhood.

    Expects features whose first four channels are premultiplied RGB and coverage
    (:class:`~cinemagraph.render.features.RGBDisparityFeatures`).
    """

    description = "built-in compositing decoder (blend, normalise, fill holes)"

    def __init__(self, full_coverage: float = 0.5):
        #: Pixels with at least this opacity keep their colour; thinner ones are filled.
        self.full_coverage = full_coverage

    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None,
                 time: float) -> Tensor:
        return push_pull_fill(*self.blend(forward, backward, time)).clamp(0.0, 1.0)

    def fill_batch(self, forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                   times: list[float]) -> tuple[Tensor, Tensor]:
        """The frames ``(B, 3, H, W)`` of several splats of one size, filled in one batch
        (each frame's pyramid is its own, so each comes out as alone), and the confidence
        ``(B, 1, H, W)`` of their blended colour before filling (1 where points cover a
        pixel fully, 0 where it was filled from the neighbourhood)."""
        parts = [self.blend(f, b, t) for f, b, t in zip(forwards, backwards, times)]
        colors, confidences = (torch.cat(p) for p in zip(*parts))
        return push_pull_fill(colors, confidences).clamp(0.0, 1.0), confidences

    def blend(self, forward: SplattedFrame, backward: SplattedFrame | None,
              time: float) -> tuple[Tensor, Tensor]:
        """The blended colour ``(1, 3, H, W)`` before filling, and its confidence."""
        features = forward.features[:, :4]
        if backward is not None:
            weight = symmetric_blend_weight(forward.alpha, forward.depth, backward.alpha,
                                            backward.depth, time)
            features = weight * features + (1.0 - weight) * backward.features[:, :4]
        coverage = features[:, 3:4]
        color = features[:, :3] / coverage.clamp_min(1e-6)
        confidence = (coverage / self.full_coverage).clamp(0.0, 1.0)
        return color, confidence
