"""Where the residual decoder's correction applies: :class:`DecodeRules` and its bands.

Our residual presets' decoder makes a correction ``c`` of the built-in composite ``base``
(:class:`~cinemagraph.render.decode.CompositingDecoder`). The rules keep it where compositing
goes wrong and leave the rest of the frame exactly as the built-in decoder makes it:

* the **hole band** (:func:`hole_band`): ``1 - confidence`` of the composite spread
  ``band_px`` pixels from its filled pixels, ``crack_px`` from cracks (gaps of one or two
  pixels between splats, which a camera moving in opens all over a frame); the whole
  correction applies there;
* the **fluid band** (:func:`fluid_band`, ``fluid_px``, 0: none): spread from the pixels
  that moving points cover, in every frame but the first (nothing has moved at time 0),
  where blending the forward and the backward cloud ghosts. Without ``fluid_border`` it
  fades out over ``border_fade_px`` pixels towards the points that come from outside the
  photo (:func:`from_outside`), the border the layers add for the camera path, so the
  decoder does not guess what lies past a photo's edge. The ``fluid_rule`` says what the
  correction may do there, away from holes: ``free``, anything (the band joins the hole
  band); ``smooth``, anything, but where a cloud covers a pixel thinly (:func:`thinness`,
  points that a stretching flow pulls apart) only its blur by a Gaussian of
  ``smooth_sigma`` pixels, so it cannot draw a line along a thinly covered row.

``frame = base + band c + (1 - band) fluid smooth(c)``, clipped to ``[0, 1]``.

The rules are part of a weight file: :meth:`DecodeRules.to_metadata` writes them and
:meth:`DecodeRules.from_metadata` reads them back, and a file whose rules are missing or name
what this code cannot do is refused with the field named. The defaults are the rules the
shipped weights were chosen with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..filters import box_mean, max_filter
from ..render.decode import CompositingDecoder, SplattedFrame

#: What the correction may do over the fluid band (:class:`DecodeRules`).
FLUID_RULES = ("free", "smooth")
#: The metadata key of a weight file that holds its rules (JSON).
METADATA_KEY = "decode_rules"


@dataclass(frozen=True)
class DecodeRules:
    """Where our residual decoder's correction applies (module docstring), and how its
    inputs are scaled. The defaults are the shipped weights' rules.

    ``band_px``: the hole band's width; ``crack_px``: its width around cracks (at most
    ``band_px``); ``fluid_px``: the fluid band's width (0: none); ``fluid_rule``: ``free`` or
    ``smooth``; ``fluid_border``: whether the fluid band covers the photo's added border;
    ``border_fade_px``: how far it fades in from that border; ``smooth_sigma``: the blur of
    the ``smooth`` rule (pixels); ``thin_full`` and ``thin_span``: coverage below
    ``thin_full - thin_span`` is thin in full, above ``thin_full`` not at all
    (:func:`thinness`); ``displacement_scale``: the decoder sees each frame's displacement
    as ``tanh(d / displacement_scale)`` (pixels)."""

    band_px: int = 191
    crack_px: int = 9
    fluid_px: int = 191
    fluid_rule: str = "smooth"
    fluid_border: bool = False
    border_fade_px: int = 9
    smooth_sigma: float = 2.0
    thin_full: float = 0.97
    thin_span: float = 0.2
    displacement_scale: float = 4.0

    def __post_init__(self):
        for name in ("band_px", "crack_px", "border_fade_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} {value!r}: give a whole number of pixels, 1 or more")
        if isinstance(self.fluid_px, bool) or not isinstance(self.fluid_px, int) \
                or self.fluid_px < 0:
            raise ValueError(f"fluid_px {self.fluid_px!r}: give 0 (none) or a whole number "
                             "of pixels")
        if self.fluid_rule not in FLUID_RULES:
            raise ValueError(f"fluid_rule '{self.fluid_rule}': one of {', '.join(FLUID_RULES)}")
        if not isinstance(self.fluid_border, bool):
            raise ValueError(f"fluid_border {self.fluid_border!r}: give true or false")
        for name in ("smooth_sigma", "thin_span", "displacement_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} {value!r}: give a number above 0")
        if isinstance(self.thin_full, bool) or not isinstance(self.thin_full, (int, float)):
            raise ValueError(f"thin_full {self.thin_full!r}: give a number")

    def describe(self) -> str:
        """The rules in words, for the log."""
        text = f"band {self.band_px} px, cracks {self.crack_px} px"
        if self.fluid_px:
            text += f", fluid {self.fluid_px} px"
            text += " (smoothed where a cloud is thin)" if self.fluid_rule == "smooth" else ""
            text += "" if self.fluid_border else " (not over the photo's border)"
        return text

    def to_metadata(self) -> dict[str, str]:
        """The weight file's metadata entry that :meth:`from_metadata` reads back."""
        return {METADATA_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> "DecodeRules":
        """The rules in a weight file's metadata; ValueError naming the field where they are
        missing, malformed, incomplete or name what this code cannot do (``source``: the
        file, for the message)."""
        if METADATA_KEY not in meta:
            raise ValueError(f"'{source}' holds no decode rules ('{METADATA_KEY}' in its "
                             "metadata): python -m cinemagraph.train.weights upgrade OLD NEW "
                             "rewrites an older file's rules")
        try:
            values = json.loads(meta[METADATA_KEY])
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, dict):
            raise ValueError(f"'{source}': malformed '{METADATA_KEY}' in its metadata")
        known = {f.name for f in fields(cls)}
        for name in values:
            if name not in known:
                raise ValueError(f"'{source}': decode rule '{name}' is not one this version "
                                 "can apply")
        for name in sorted(known - set(values)):
            raise ValueError(f"'{source}': decode rule '{name}' is missing from its metadata")
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"'{source}': decode rule {e}") from None


class RuleInputs(NamedTuple):
    """What the rules and the decoder's extra inputs take from a batch of splats, made once
    per frame (an ensemble's members share it): the built-in composite ``base (B, 3, H, W)``
    and its ``confidence (B, 1, H, W)``, the decoder's ``extra`` channels (composite,
    confidence, displacement; padded), the hole ``band`` and, for the ``smooth`` rule, the
    ``fluid`` band and ``thin`` coverage (else None)."""

    base: Tensor
    confidence: Tensor
    extra: Tensor
    band: Tensor
    fluid: Tensor | None
    thin: Tensor | None


def pad16(x: Tensor) -> Tensor:
    """``x (B, C, H, W)`` padded at the bottom and right to sides that are multiples of 16
    (edge pixels repeated): both networks halve their input four times."""
    h, w = x.shape[-2:]
    pad = (0, (-w) % 16, 0, (-h) % 16)
    return F.pad(x, pad, mode="replicate") if any(pad) else x


@torch.no_grad()
def rule_inputs(rules: DecodeRules, forwards: list[SplattedFrame],
                backwards: list[SplattedFrame | None], times: list[float]) -> RuleInputs:
    """The :class:`RuleInputs` of a batch of splats (each backward None or a splat; ``times``
    as the frames' ``t / N``). The composite depends on the points' colours and the splats'
    geometry only, neither of which the networks make: no gradient is recorded."""
    base, confidence = CompositingDecoder().fill_batch(forwards, backwards, times)
    moved = torch.cat([displacement_channels(f, b, rules.displacement_scale)
                       for f, b in zip(forwards, backwards)])
    extra = pad16(torch.cat([base, confidence, moved], 1))
    band = hole_band(confidence, rules.band_px, rules.crack_px)
    fluid = thin = None
    if rules.fluid_px:
        fluid = torch.cat([moving_opacity(f, b) * (b is not None and t > 0)
                           for f, b, t in zip(forwards, backwards, times)])
        fluid = fluid_band(fluid, rules.fluid_px)
        if not rules.fluid_border:
            outside = torch.cat([from_outside(f, b) for f, b in zip(forwards, backwards)])
            fluid = fluid * (1.0 - spread(outside, rules.border_fade_px | 1))
        if rules.fluid_rule == "free":
            band, fluid = torch.maximum(band, fluid), None
        else:
            thin = torch.cat([thinness(f, b, rules) for f, b in zip(forwards, backwards)])
    return RuleInputs(base, confidence, extra, band, fluid, thin)


def apply_rules(rules: DecodeRules, inputs: RuleInputs, correction: Tensor) -> Tensor:
    """The frame ``(B, 3, H, W)`` in ``[0, 1]``: the composite with ``correction
    (B, 3, H, W)`` (in ``[-1, 1]``, cropped to the frame) applied where the rules say."""
    frame = inputs.base + inputs.band * correction
    if inputs.fluid is not None:  # the smooth rule
        smooth = correction + inputs.thin * (blur(correction, rules.smooth_sigma) - correction)
        frame = frame + (1.0 - inputs.band) * inputs.fluid * smooth
    return frame.clamp(0, 1)


def spread(x: Tensor, k: int) -> Tensor:
    """``x (B, 1, H, W)`` max-filtered over ``k x k`` pixels, then box-averaged over ``k x k``
    (the average over the part of the box inside the frame). On the CPU their cost does not
    grow with ``k`` (:func:`~cinemagraph.filters.max_filter`,
    :func:`~cinemagraph.filters.box_mean`)."""
    return box_mean(max_filter(x, k), k)


def hole_band(confidence: Tensor, width: int, crack_width: int | None = None) -> Tensor:
    """The band around a composite's filled pixels, in ``[0, 1]`` ``(B, 1, H, W)``: ``1 -
    confidence`` spread by a max filter of ``width`` pixels, then averaged over ``width``
    pixels, so it is 1 over and next to holes and falls to 0 about ``width`` pixels away.

    ``crack_width`` (default and at most ``width``): how far cracks spread, the holes that a
    3x3 min filter removes; wider holes spread ``width`` from their pixels that the min
    filter keeps. A single crack pixel otherwise spreads a ``width``-wide square of band over
    covered pixels far from any disocclusion."""
    k = int(width) | 1
    hole = 1.0 - confidence
    c = k if crack_width is None else int(crack_width) | 1
    if c >= k:
        return spread(hole, k)
    wide = -F.max_pool2d(-hole, 3, 1, 1)  # holes at least 3 px across (3x3 min filter)
    return torch.maximum(spread(wide, k), spread(hole, c))


def fluid_band(moving: Tensor, width: int) -> Tensor:
    """The band around the pixels that moving points cover (``moving (B, 1, H, W)``, their
    opacity, :func:`moving_opacity`), in ``[0, 1]``: where over half a pixel's opacity moves,
    spread as :func:`hole_band` spreads holes, ``width`` pixels."""
    return spread((moving > 0.5).to(moving.dtype), int(width) | 1)


def thinness(forward: SplattedFrame, backward: SplattedFrame | None,
             rules: DecodeRules = DecodeRules()) -> Tensor:
    """``(1, 1, H, W)`` in ``[0, 1]``: how thinly the forward or the backward frame covers a
    pixel, ``(thin_full - alpha) / thin_span`` of the lower of the two opacities, clipped,
    then max-filtered over 3x3 pixels (so the rows beside a thin one count too)."""
    alpha = forward.alpha if backward is None else torch.minimum(forward.alpha, backward.alpha)
    thin = ((rules.thin_full - alpha) / rules.thin_span).clamp(0, 1)
    return F.max_pool2d(thin, 3, 1, 1)


def blur(x: Tensor, sigma: float) -> Tensor:
    """``x (B, C, H, W)`` blurred by a Gaussian of ``sigma`` pixels (edges repeated)."""
    from kornia.filters import gaussian_blur2d

    k = 2 * int(2 * sigma) + 1
    return gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="replicate")


def from_outside(forward: SplattedFrame, backward: SplattedFrame | None = None) -> Tensor:
    """``(1, 1, H, W)``: 1 where the points seen in the forward (or the backward) frame come
    from outside the photo, from the border the layers add around it (their pixel less their
    displacement lies outside the frame), else 0 (also where nothing covers a pixel: the
    displacement is zero there). Needs the frames' displacement (zeros without it)."""
    out = forward.alpha.new_zeros(forward.alpha.shape)
    h, w = out.shape[-2:]
    ys = torch.arange(h, device=out.device, dtype=out.dtype).view(h, 1)
    xs = torch.arange(w, device=out.device, dtype=out.dtype).view(1, w)
    for frame in (forward, backward):
        if frame is None or frame.displacement is None:
            continue
        sx, sy = xs - frame.displacement[:, 0:1], ys - frame.displacement[:, 1:2]
        far = (sx < -0.5) | (sx > w - 0.5) | (sy < -0.5) | (sy > h - 0.5)
        out = torch.maximum(out, far.to(out.dtype))
    return out


def moving_opacity(forward: SplattedFrame, backward: SplattedFrame | None) -> Tensor:
    """The opacity ``(1, 1, H, W)`` of moving points, the larger of the forward and the
    backward frame's (0 where a frame carries no share of moving points)."""
    out = forward.alpha.new_zeros(forward.alpha.shape)
    for frame in (forward, backward):
        if frame is not None and frame.moving is not None:
            out = torch.maximum(out, frame.moving * frame.alpha)
    return out


def displacement_channels(forward: SplattedFrame, backward: SplattedFrame | None,
                          scale: float) -> Tensor:
    """The decoder's displacement channels ``(1, 4, H, W)`` of one frame: each splat's
    ``tanh(displacement / scale)``, premultiplied (zero where a splat carries none); without
    a backward frame the forward one stands in."""
    maps = []
    for frame in (forward, backward if backward is not None else forward):
        if frame.displacement is None:
            maps.append(frame.alpha.new_zeros(1, 2, *frame.alpha.shape[-2:]))
        else:
            maps.append(torch.tanh(frame.displacement / scale) * frame.alpha)
    return torch.cat(maps, 1)
