"""The learned feature network and decoder as pipeline components.

:class:`LearnedFeatures` is a :class:`~cinemagraph.render.features.FeatureExtractor` and
:class:`LearnedDecoder` a :class:`~cinemagraph.render.decode.Decoder`, both on one model (a
:class:`SpaceTimeModel` or an ensemble). Our residual presets run at a working size
(:data:`WORK_SIZE`): they were trained on 256x192 scenes, and on larger frames (the render's
1920 px) they met scales they never saw and laid a fine ripple over revealed regions. Larger
frames get features from shrunk layers and the decoder's correction made at that size,
enlarged onto the built-in composite of their own size.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ldi.scene import LayeredDepthImage
from ..render.decode import CompositingDecoder, SplattedFrame
from .ensemble import SpaceTimeEnsemble
from .network import SpaceTimeModel
from .weights import load_spacetime

#: The longer side, in pixels, at which our residual presets run (module docstring).
WORK_SIZE = 448


class LearnedFeatures:
    """The feature network of ``model``. ``work_size``: the layers of a photo whose longer
    side exceeds it go through the network shrunk as the photo is shrunk to it (area means
    of the premultiplied colour and coverage), and the features come back enlarged
    (bilinear); None: always at the layers' own size. The layers hold the photo and the
    border a camera path needs around it (:attr:`LayeredDepthImage.border`), which does not
    count: a 448-px photo's layers keep their size at a working size of 448."""

    def __init__(self, model: SpaceTimeModel | SpaceTimeEnsemble, description: str,
                 work_size: int | None = None):
        self.model, self.description, self.work_size = model, description, work_size
        self.channels = 4 + model.feature_channels

    @torch.no_grad()
    def __call__(self, ldi: LayeredDepthImage) -> Tensor:
        h, w = ldi.size
        shape = work_shape(h, w, self.work_size, ldi.photo_size)
        if shape is None:
            return self.model.features(ldi)
        cover = ldi.coverage.to(ldi.color.dtype)
        rgba = F.interpolate(torch.cat([ldi.color * cover, cover], 1), size=shape, mode="area")
        feats = self.model.feature_map(rgba)
        feats = F.interpolate(feats, size=(h, w), mode="bilinear", align_corners=False)
        return torch.cat([ldi.color, torch.ones_like(ldi.depth), feats], dim=1)


class LearnedDecoder:
    """The image decoder of ``model`` (``dtype``: its arithmetic; ``work_size`` as for
    :class:`LearnedFeatures`)."""

    def __init__(self, model: SpaceTimeModel | SpaceTimeEnsemble, description: str,
                 dtype: torch.dtype = torch.float32, work_size: int | None = None):
        self.model, self.description, self.dtype = model, description, dtype
        self.reads_displacement = model.residual
        self.work_size = work_size

    @torch.no_grad()
    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        shape = work_shape(*forward.alpha.shape[-2:], self.work_size)
        if shape is None or not self.model.residual:
            return self._decode(forward, backward, time)
        # The correction made at the working size, enlarged onto the built-in composite of
        # the frame's own size; the small composite is made once, for the rules and here.
        small = (shrink(forward, shape), None if backward is None else shrink(backward, shape))
        inputs = self.model.rule_inputs([small[0]], [small[1]], [time])
        correction = self._decode(*small, time, inputs) - inputs.base
        correction = F.interpolate(correction, size=forward.alpha.shape[-2:], mode="bilinear",
                                   align_corners=False)
        return (CompositingDecoder()(forward, backward, time) + correction).clamp(0, 1)

    def _decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float,
                inputs=None) -> Tensor:
        if self.dtype != torch.float32:
            with torch.autocast(forward.features.device.type, dtype=self.dtype):
                return self.model.decode_batch([forward], [backward], [time], inputs) \
                    .float().clamp(0, 1)
        return self.model.decode_batch([forward], [backward], [time], inputs).clamp(0, 1)


def work_shape(h: int, w: int, work_size: int | None,
               reference: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """``(h, w)`` scaled as the frame ``reference`` (default ``(h, w)`` itself) is scaled so
    its longer side is ``work_size``, or None where that is no longer than ``work_size`` (or
    ``work_size`` is None)."""
    longest = max(reference or (h, w))
    if work_size is None or longest <= work_size:
        return None
    scale = work_size / longest
    return max(1, round(h * scale)), max(1, round(w * scale))


def shrink(frame: SplattedFrame, shape: tuple[int, int]) -> SplattedFrame:
    """``frame`` splatted as if at ``shape`` (area means: the premultiplied features and the
    opacity as they are, depth and displacement weighted by opacity, displacement in the
    smaller frame's pixels)."""
    def area(x: Tensor) -> Tensor:
        return F.interpolate(x, size=shape, mode="area")

    alpha = area(frame.alpha)
    weight = alpha.clamp_min(1e-6)
    depth = torch.where(alpha > 0, area(frame.depth * frame.alpha) / weight, area(frame.depth))
    displacement = None
    if frame.displacement is not None:
        scale = shape[1] / frame.alpha.shape[-1]
        displacement = area(frame.displacement * frame.alpha) / weight * scale
    moving = None if frame.moving is None else area(frame.moving * frame.alpha) / weight
    return SplattedFrame(area(frame.features), alpha, depth, displacement, moving)


def describe(model: SpaceTimeModel | SpaceTimeEnsemble, path: Path,
             work_size: int | None) -> str:
    """What the log says of the learned pair of ``path``."""
    kind = "official" if path.suffix == ".pth" else f"ours, preset '{model.preset}'"
    if isinstance(model, SpaceTimeEnsemble):
        kind += (f", an output ensemble of {len(model.members)} networks weighted "
                 + " / ".join(f"{w:.3g}" for w in model.weights))
    if model.residual:
        kind += f", {model.rules.describe()}"
        kind += (f", run at {work_size} px on larger frames" if work_size is not None
                 else ", run at the frame's size")
    return f"learned feature network + image decoder ({kind}, '{path}')"


def learned_components(path: str | Path, device=None, work_size: int | None = WORK_SIZE
                       ) -> tuple[LearnedFeatures, LearnedDecoder]:
    """Return the feature extractor and decoder of the weight file ``path`` on ``device``;
    our residual presets run at ``work_size`` (None: at the frame's own size), the official
    networks always at the frame's own size."""
    path = Path(path)
    model = load_spacetime(path).to(device)
    if not model.residual:
        work_size = None
    description = describe(model, path, work_size)
    return (LearnedFeatures(model, description, work_size=work_size),
            LearnedDecoder(model, description, work_size=work_size))
