"""The feature network and the image decoder of one preset: :class:`SpaceTimeModel`.

* Features: each layer's RGBA (colour premultiplied by coverage) through the feature network,
  all layers in one batch (batch statistics over the layers, as the original); the point
  features are ``[RGB, 1, features]``, so splatting yields premultiplied colour, accumulated
  alpha and features.
* Decoding: the disparity channel is appended (``1 / depth`` of each splatted frame, min-max
  normalised over the covered pixels of both frames, premultiplied by alpha), the maps are
  padded to multiples of 16 and the image decoder runs on the forward and backward maps and
  the time ``t / N``. Without a backward frame (no motion, or frame 0) both inputs are the
  forward map, as the original renders novel views.

Presets (:data:`PRESETS`): ``official`` is the original's configuration (32 features, decoder
base width 32), its decoder's output is the frame. ``base`` and ``small`` are narrower and
residual: their decoder's output is a correction of the built-in compositing decoder's frame,
``c = 2 (d - 0.5)`` with ``d`` the decoder's sigmoid output, applied where the model's
:class:`~cinemagraph.spacetime.rules.DecodeRules` say. Their decoder also sees that composite
and its confidence (:data:`COMPOSITE_CHANNELS`) and how far the points it sees have moved
from their pixels in the photo (:data:`DISPLACEMENT_CHANNELS`), so it can tell the photo
itself (frame 0 at the source camera, nothing to correct) from what moving points and cameras
make. The residual decoder's last convolution starts at zero, so an untrained model renders
exactly as the built-in decoder.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..ldi.scene import LayeredDepthImage
from ..models.feature_net import PRESETS as FEATURE_PRESETS
from ..models.feature_net import ResUNet
from ..models.img_decoder import ImgDecoder
from ..render.decode import SplattedFrame
from .rules import DecodeRules, RuleInputs, apply_rules, pad16, rule_inputs

#: Decoder base width by preset (the feature widths are in ``feature_net.PRESETS``).
DECODER_BASE = {"official": 32, "base": 16, "small": 8}
PRESETS = tuple(FEATURE_PRESETS)
#: What the residual presets' decoder sees besides the splats: the built-in composite it
#: corrects (RGB) and that composite's confidence (1 covered, 0 filled).
COMPOSITE_CHANNELS = 4
#: And the displacement (x, y) of the forward and the backward frame's points
#: (:func:`~cinemagraph.spacetime.rules.displacement_channels`).
DISPLACEMENT_CHANNELS = 4


class SpaceTimeModel(nn.Module):
    """The feature network and the image decoder of ``preset``; the residual presets apply
    their correction by ``rules`` (default: the shipped rules). Module docstring."""

    def __init__(self, preset: str = "official", rules: DecodeRules | None = None):
        super().__init__()
        if preset not in FEATURE_PRESETS:
            raise ValueError(f"unknown preset '{preset}' (one of {', '.join(PRESETS)})")
        self.preset = preset
        args = FEATURE_PRESETS[preset]
        self.feature_net = ResUNet(in_ch=4, **args)
        self.residual = preset != "official"
        self.img_decoder = ImgDecoder(in_ch=4 + args["out_ch"] + 1, out_ch=3,
                                      base=DECODER_BASE[preset],
                                      extra_ch=(COMPOSITE_CHANNELS + DISPLACEMENT_CHANNELS
                                                if self.residual else 0))
        if self.residual:
            nn.init.zeros_(self.img_decoder.outc.conv.weight)
            nn.init.zeros_(self.img_decoder.outc.conv.bias)
        #: None for the official preset, which has no correction to place.
        self.rules = (rules or DecodeRules()) if self.residual else None

    @property
    def feature_channels(self) -> int:
        return FEATURE_PRESETS[self.preset]["out_ch"]

    def features(self, ldi: LayeredDepthImage) -> Tensor:
        """Return the point features ``(L, 4 + C, H, W)`` of ``ldi``'s layers."""
        cover = ldi.coverage.to(ldi.color.dtype)
        rgba = torch.cat([ldi.color * cover, cover], dim=1)
        return torch.cat([ldi.color, torch.ones_like(ldi.depth), self.feature_map(rgba)], dim=1)

    def feature_map(self, rgba: Tensor) -> Tensor:
        """The feature network's ``(L, C, H, W)`` of premultiplied colour and coverage
        ``rgba (L, 4, H, W)``. The network halves its input four times and pads its skip
        connections where a side does not halve evenly, which stretches its output against
        the pixels; so the input is padded to multiples of 16 and the output cropped back."""
        h, w = rgba.shape[-2:]
        rgba = pad16(rgba)
        feats = self.feature_net(rgba)
        feats = F.interpolate(feats, size=rgba.shape[-2:], mode="bilinear", align_corners=True)
        return feats[..., :h, :w]

    def decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        """Return RGB ``(1, 3, H, W)`` from the splatted frames of time ``t / N``."""
        return self.decode_batch([forward], [backward], [time])

    def rule_inputs(self, forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                    times: list[float]) -> RuleInputs:
        """What the rules need of a batch (:func:`~cinemagraph.spacetime.rules.rule_inputs`),
        to make once and hand to :meth:`decode_batch` (residual presets)."""
        return rule_inputs(self.rules, forwards, backwards, times)

    def decode_batch(self, forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                     times: list[float], inputs: RuleInputs | None = None) -> Tensor:
        """:meth:`decode` of several frames of one size at once ``(B, 3, H, W)``: the image
        decoder runs on the batch (its group norms are per sample, so each frame comes out
        as :meth:`decode` alone would make it). ``inputs``: :meth:`rule_inputs` of the
        batch, where already made."""
        x0s, x1s, ts = [], [], []
        for forward, backward, time in zip(forwards, backwards, times):
            x0, x1 = self._maps(forward, backward)
            x0s.append(x0), x1s.append(x1), ts.append(time if backward is not None else 0.0)
        x0, x1 = torch.cat(x0s), torch.cat(x1s)
        h, w = x0.shape[-2:]
        x0, x1 = pad16(x0), pad16(x1)
        t = ts[0] if len(ts) == 1 else torch.tensor(ts, dtype=x0.dtype, device=x0.device).view(-1, 1, 1, 1)
        if not self.residual:
            return self.img_decoder(x0, x1, t)[..., :h, :w]
        if inputs is None:
            inputs = self.rule_inputs(forwards, backwards, times)
        correction = 2.0 * (self.img_decoder(x0, x1, t, inputs.extra) - 0.5)
        return apply_rules(self.rules, inputs, correction[..., :h, :w])

    @staticmethod
    def _maps(forward: SplattedFrame, backward: SplattedFrame | None) -> tuple[Tensor, Tensor]:
        """The decoder's two input maps: features and normalised disparity (premultiplied)."""
        frames = [forward] if backward is None else [forward, backward]
        disparities = [1.0 / f.depth.clamp_min(1e-6) for f in frames]
        covered = [f.alpha > 1e-3 for f in frames]
        # Masked extremes rather than indexing by the mask: the same numbers without waiting
        # for the GPU (no frame is covered: 0 and 1).
        inf = torch.tensor(float("inf"), device=forward.depth.device)
        lo = torch.stack([torch.where(c, d, inf).amin() for d, c in zip(disparities, covered)]).amin()
        hi = torch.stack([torch.where(c, d, -inf).amax() for d, c in zip(disparities, covered)]).amax()
        lo, hi = torch.where(lo.isinf(), 0.0, lo), torch.where(hi.isinf(), 1.0, hi)
        maps = [torch.cat([f.features, ((d - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1) * f.alpha], 1)
                for f, d in zip(frames, disparities)]
        return maps[0], maps[-1]
