"""The learned feature network and image decoder as pipeline components, their presets, and
their weight files (the official training checkpoint, or our own safetensors).

* :class:`LearnedFeatures`: each layer's RGBA (colour premultiplied by coverage) through the
  feature network, all layers in one batch (batch statistics over the layers, as the
  original), upsampled bilinearly (``align_corners=True``) to the image; the point features
  are ``[RGB, 1, features]``, so splatting yields premultiplied colour, accumulated alpha and
  features.
* :class:`LearnedDecoder`: appends the disparity channel (``1 / depth`` of each splatted
  frame, min-max normalised over the covered pixels of both frames, premultiplied by alpha:
  the original normalises per point over the points drawn, then composites), pads to a
  multiple of 16 (replicated borders) and runs the image decoder on the forward and
  backward maps and the time ``t / N``. Without a backward frame (no motion, or frame 0) both
  inputs are the forward map, as the original renders novel views.

Presets (:data:`PRESETS`): ``official`` is the original's configuration (32 features, decoder
base width 32); ``base`` and ``small`` are narrower for our own weights, and residual: their
decoder's output is a correction added to the built-in compositing decoder's frame
(:class:`~cinemagraph.models.decoder.CompositingDecoder`), ``frame = composite + 2 (d - 0.5)``
with ``d`` the decoder's sigmoid output. Their decoder also sees that composite and its
confidence (:data:`COMPOSITE_CHANNELS`, appended after its blend), so it knows what it
corrects and where points cover the frame; and how far the points it sees have moved from
their pixels in the photo (:data:`DISPLACEMENT_CHANNELS`: ``tanh(d / 4 px)``, premultiplied,
for the forward and backward frames), so it can tell the photo itself (frame 0 at the source
camera, nothing moved, nothing to correct) from what moving points and cameras make.

Where the correction applies (``correction``, :data:`CORRECTIONS`, kept in the weight file):

* ``everywhere``: added to every pixel (our weights of the sixth session; they brightened the
  astronaut photo's whole foreground layer once the camera moved);
* ``gate``: through a gate (:class:`GeometryGate`) that sees geometry only (coverage,
  confidence, displacement, disparity, time) and none of the colours or features, so where
  the correction applies is decided by the splats' geometry, not by how a photo looks
  (trained, it closed where nothing has moved, which keeps frame 0 the photo, and stayed open
  nearly everywhere else); and on the pixels points cover, only the correction's detail
  applies (the correction minus its Gaussian blur of :data:`DETAIL_SIGMA` pixels, in
  proportion to the confidence), so it can sharpen and mend seams there but cannot shift a
  whole region's colour; in holes it applies whole;
* ``band``: only in and near the composite's holes, fading out ``band_px`` pixels from them
  (:func:`hole_band`), so pixels that points cover far from any disocclusion stay exactly
  as the built-in decoder makes them (frame 0 too). Cracks (gaps of one or two pixels
  between splats) may spread a narrower band, ``crack_px``: at one width for all, a few
  crack pixels in a real photo's zoom spread the band over most of it. And ``fluid_px``
  (0: off): the band also spreads that far from the pixels that moving points (the
  fluid) cover, in the forward or the backward frame, where blending the two clouds
  ghosts, in every frame but the first (at time 0 nothing has moved and the backward
  cloud does not show); a static photo (nothing moves) keeps the hole band alone. There,
  away from holes, ``fluid_rule`` (:data:`FLUID_RULES`) limits what the correction may do:
  anything (``free``), only reweigh the two clouds' colours (``between``) or only add
  detail (``detail``), so it cannot shift a whole region's colour; or anything, but blurred
  where a cloud covers a pixel thinly (``smooth``, :func:`thinness`: where a stretching flow
  pulls the points apart, so a sharpening correction cannot draw that row as a line). And
  ``fluid_border`` (default true): whether the fluid band also covers the points that come
  from outside the photo (:func:`from_outside`), the border that the layers add for the
  camera path, whose colours their inpainting invented; false leaves them the hole band
  alone (fading in over :data:`BORDER_FADE_PX` pixels), so the decoder does not guess what
  lies beyond a photo's edge. And ``moved_detail`` (default false): outside both bands,
  the correction's fine detail (less its Gaussian blur of :data:`MOVED_DETAIL_SIGMA`
  pixels) applies where the points seen have moved from their pixels in the photo, in
  proportion up to :data:`MOVED_DETAIL_PX` of displacement and in full from there, so it can
  sharpen what splatting blurs when the camera moves but not shift a region's colour. At
  frame 0 from the source camera the points have moved by rounding only: on the sample
  photos that frame changes by far less than one 8-bit step (above 92 dB against the photo).
  And ``clamp_px`` (0: off; odd): on the pixels that points cover, the correction may not
  take a pixel's colour beyond the lowest and the highest value (per channel) of the
  built-in frame over the ``clamp_px x clamp_px`` pixels around it (:func:`local_range`),
  in the hole band in proportion to the composite's confidence (holes keep the whole
  correction), over the fluid band and the moved detail wholly. So it may re-blend,
  sharpen and mend seams with the colours around a pixel, but not bring in a colour that
  its neighbourhood lacks. It does not stop what stays within that range: at 13 px the
  moved detail's halo past the astronaut's suit, the ``free`` rule's line on the waterfall
  and the dark band over the seascape's invented border all pass through it
  (``benchmarks/RESULTS.md``, twenty-fifth session).

A residual model may hold a ``refiner`` (``refiner`` > 0: the base width of a second, smaller
image decoder, :data:`REFINER_EXTRA`): it sees what the decoder sees and the decoder's
correction, and adds its own correction to it, before the rules above apply; its last
convolution starts at zero, so a model given a refiner renders exactly as it did, and the
refiner can be trained alone on top of trained weights (``spacetime.model.freeze_base``)
without first undoing what they learned.

The decoder's last convolution starts at zero, so an untrained model renders exactly as the
built-in decoder and training only has to learn what compositing gets wrong (holes, seams,
blur). A small network trained from scratch to reproduce whole frames stayed 6 dB below compositing
after 750 steps (22.5 against 28.2 dB on our validation scenes), which is why. A weight file
is either the official training checkpoint (``model_STEP.pth``, a dict holding ``feature_net``
and ``img_decoder``; official preset) or our safetensors with keys ``feature_net.*``,
``img_decoder.*`` and (residual presets) ``gate.*``, and the preset in its metadata. Files
without the correction in their metadata are read as ``gate`` if they hold a gate, else as
``everywhere``, and render as they did (logged); training switches a file to the configured
correction (:meth:`SpaceTimeModel.set_correction`). Our file may also hold an output
ensemble (:class:`SpaceTimeEnsemble`, :func:`save_ensemble`): each member's tensors under
``memberI.``, in fp16 or int8 (a weight ``KEY`` stored as int8 beside its per-output-channel
scales ``KEY.int8_scale``), the members' shared preset and rules and their weights
(``ensemble``) in the metadata.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..filters import box_mean, max_filter
from ..ldi.scene import LayeredDepthImage
from .decoder import SplattedFrame
from .feature_net import PRESETS as FEATURE_PRESETS
from .feature_net import ResUNet
from .img_decoder import ImgDecoder

log = logging.getLogger("cinemagraph.models")

#: Decoder base width by preset (the feature widths are in ``feature_net.PRESETS``).
DECODER_BASE = {"official": 32, "base": 16, "small": 8}
PRESETS = tuple(FEATURE_PRESETS)
#: The longer side, in pixels, at which our residual presets' feature network and decoder
#: run: they were trained on 256x192 scenes, and on larger frames (the render's 1920 px) they
#: met scales they never saw and laid a fine ripple over revealed regions. Larger frames get
#: features from shrunk layers and the decoder's correction made at this size, enlarged onto
#: the built-in composite of their own size (:class:`LearnedFeatures`, :class:`LearnedDecoder`).
WORK_SIZE = 448
#: What the residual presets' decoder sees besides the splats: the built-in composite it
#: corrects (RGB) and that composite's confidence (1 covered, 0 filled).
COMPOSITE_CHANNELS = 4
#: And the displacement (x, y) of the forward and the backward frame's points, in pixels
#: through ``tanh(d / DISPLACEMENT_SCALE)``.
DISPLACEMENT_CHANNELS = 4
DISPLACEMENT_SCALE = 4.0
#: Gated models: on covered pixels the correction loses its blur by a Gaussian of this sigma
#: (pixels): the low frequencies (a region's colour) are the composite's.
DETAIL_SIGMA = 4.0
#: What the gate sees: the composite's confidence, the displacement channels, each frame's
#: coverage (alpha) and normalised disparity, and the time ``t / N``.
GATE_CHANNELS = 1 + DISPLACEMENT_CHANNELS + 2 + 2 + 1
#: Where the residual presets' correction applies (:class:`SpaceTimeModel`): ``everywhere``
#: (our weights of the sixth session), ``gate`` (a learned :class:`GeometryGate`, and only
#: the correction's detail on covered pixels) or ``band`` (only near the composite's filled
#: pixels, :func:`hole_band`).
CORRECTIONS = ("everywhere", "gate", "band")
#: The band's width in pixels (:func:`hole_band`).
BAND_PX = 31
#: What the correction may do over the fluid band, away from holes (:class:`SpaceTimeModel`):
#: ``free``, anything; ``between``, only move the frame within the range of the forward and
#: the backward cloud's colours at each pixel (per channel); ``detail``, only add the
#: correction's detail (the correction less its Gaussian blur of :data:`DETAIL_SIGMA` px);
#: ``smooth``, anything, but where a cloud covers a pixel thinly (:func:`thinness`: points
#: that the flow pulls apart) only the correction blurred by a Gaussian of
#: :data:`SMOOTH_SIGMA` px, so it cannot draw a line along a thinly covered row.
FLUID_RULES = ("free", "between", "detail", "smooth")
SMOOTH_SIGMA = 2.0
#: :func:`thinness`: full below this coverage less :data:`THIN_SPAN`, none above it.
THIN_FULL = 0.97
THIN_SPAN = 0.2
#: Without ``fluid_border``, the fluid band fades in over this many pixels from the points that
#: come from outside the photo (:func:`from_outside`) (31 until the eighteenth session; 9
#: gains 0.009 dB on our validation scenes, and the seascape's border stays clean).
BORDER_FADE_PX = 9
#: With ``moved_detail``, the correction's detail applies in full where the points seen have
#: moved this many pixels or more from their pixels in the photo, in proportion below.
MOVED_DETAIL_PX = 1.0
#: And the detail is the correction less its Gaussian blur of this sigma (pixels): the scale
#: of what splatting blurs. At :data:`DETAIL_SIGMA` (4 px) it also brightened the astronaut
#: photo's dark boot, a region about 20 px across, by 3 steps on a zooming camera.
MOVED_DETAIL_SIGMA = 1.5
#: What a refiner sees besides the decoder's inputs (:class:`SpaceTimeModel`): the decoder's
#: correction (RGB, in ``[-1, 1]``).
REFINER_EXTRA = 3
#: Where an int8-stored tensor ``KEY`` of our files keeps its per-channel scales: ``KEY`` + this.
INT8_SCALE = ".int8_scale"
#: The file name of our own weights in ``pretrained/``.
OWN_WEIGHTS = "cinemagraph_spacetime.safetensors"


def _pad16(x: Tensor) -> Tensor:
    """``x (B, C, H, W)`` padded at the bottom and right to sides that are multiples of 16
    (edge pixels repeated): both networks halve their input four times."""
    h, w = x.shape[-2:]
    pad = (0, (-w) % 16, 0, (-h) % 16)
    return F.pad(x, pad, mode="replicate") if any(pad) else x


class GeometryGate(nn.Module):
    """Where the residual decoder's correction applies, in ``[0, 1]`` per pixel, from the
    splats' geometry (:data:`GATE_CHANNELS`): four 3x3 convolutions, dilated 1, 2, 4 and 1
    (a 17-pixel field of view: the seams, holes and moved edges around a pixel), then a
    sigmoid. It starts uniform at ``sigmoid(bias)``."""

    def __init__(self, width: int = 16, bias: float = 2.0):
        super().__init__()
        layers, cin = [], GATE_CHANNELS
        for dilation in (1, 2, 4):
            layers += [nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation), nn.ReLU()]
            cin = width
        self.net = nn.Sequential(*layers, nn.Conv2d(width, 1, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.constant_(self.net[-1].bias, bias)

    def forward(self, geometry: Tensor) -> Tensor:
        return torch.sigmoid(self.net(geometry))


def _check_correction(correction: str, band_px: int, crack_px: int | None = None,
                      fluid_px: int = 0, fluid_rule: str = "free",
                      fluid_border: bool = True, moved_detail: bool = False,
                      clamp_px: int = 0) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction '{correction}' (one of {', '.join(CORRECTIONS)})")
    if int(band_px) < 1:
        raise ValueError(f"band width {band_px} px (use at least 1)")
    if crack_px is not None and int(crack_px) < 1:
        raise ValueError(f"crack band width {crack_px} px (use at least 1)")
    if int(fluid_px) < 0:
        raise ValueError(f"fluid band width {fluid_px} px (use 0 for none, or more)")
    if fluid_rule not in FLUID_RULES:
        raise ValueError(f"unknown fluid rule '{fluid_rule}' (one of {', '.join(FLUID_RULES)})")
    if not isinstance(fluid_border, bool):
        raise ValueError(f"fluid border {fluid_border!r} (use true or false)")
    if not isinstance(moved_detail, bool):
        raise ValueError(f"moved detail {moved_detail!r} (use true or false)")
    if moved_detail and correction != "band":
        raise ValueError(f"moved detail needs the band correction, not '{correction}'")
    if isinstance(clamp_px, bool) or not isinstance(clamp_px, int) or clamp_px < 0 \
            or (clamp_px and clamp_px % 2 == 0):
        raise ValueError(f"clamp window {clamp_px!r} px (use 0 for none, or an odd width)")
    if clamp_px and correction != "band":
        raise ValueError(f"the clamp needs the band correction, not '{correction}'")


def _spread(x: Tensor, k: int) -> Tensor:
    """``x (B, 1, H, W)`` max-filtered over ``k x k`` pixels, then box-averaged over ``k x k``
    (the average over the part of the box inside the frame): :func:`~cinemagraph.filters.max_filter`,
    :func:`~cinemagraph.filters.box_mean`. On the CPU their cost does not grow with ``k``: at
    191 px on a 448x252 frame 4 ms against 63 for the max- and average-pools, which were half
    the decoder's time there (``benchmarks/bench_spacetime.py``)."""
    return box_mean(max_filter(x, k), k)


def hole_band(confidence: Tensor, width: int = BAND_PX, crack_width: int | None = None) -> Tensor:
    """The band around a composite's filled pixels, in ``[0, 1]`` ``(B, 1, H, W)``: ``1 -
    confidence`` spread by a max filter of ``width`` pixels, then averaged over ``width``
    pixels, so it is 1 over and next to holes and falls to 0 about ``width`` pixels away
    from them. A photo's pixels that points still cover, far from any disocclusion, lie
    outside it.

    ``crack_width`` (default and at most ``width``): how far cracks spread, the holes that a
    3x3 min filter removes (gaps of one or two pixels between splats, which a camera moving
    in opens all over a frame); wider holes spread ``width`` from their pixels that the min
    filter keeps (one pixel in from their edge). A single crack pixel otherwise spreads a
    ``width``-wide square of band over covered pixels far from any disocclusion."""
    k = int(width) | 1
    hole = 1.0 - confidence
    c = k if crack_width is None else int(crack_width) | 1
    if c >= k:
        return _spread(hole, k)
    wide = -F.max_pool2d(-hole, 3, 1, 1)  # holes at least 3 px across (3x3 min filter)
    return torch.maximum(_spread(wide, k), _spread(hole, c))


def fluid_band(moving: Tensor, width: int) -> Tensor:
    """The band around the pixels that moving points cover (``moving (B, 1, H, W)``, their
    opacity, :func:`moving_opacity`), in ``[0, 1]``: where over half a pixel's opacity moves, spread
    as :func:`hole_band` spreads holes, ``width`` pixels."""
    return _spread((moving > 0.5).to(moving.dtype), int(width) | 1)


class SpaceTimeModel(nn.Module):
    """The feature network and the image decoder of one preset; for the residual presets,
    where the decoder's correction applies (``correction``, one of :data:`CORRECTIONS`; the
    band is ``band_px`` wide, ``crack_px`` around cracks, ``fluid_px`` around moving points,
    over the photo's border too where ``fluid_border``; :func:`hole_band`, :func:`fluid_band`;
    and its detail where points moved, outside both, where ``moved_detail``); and, with
    ``refiner`` > 0, a second image decoder of that base width that adds to the correction
    (module docstring)."""

    def __init__(self, preset: str = "official", correction: str = "gate", band_px: int = BAND_PX,
                 crack_px: int | None = None, fluid_px: int = 0, fluid_rule: str = "free",
                 fluid_border: bool = True, moved_detail: bool = False, clamp_px: int = 0,
                 refiner: int = 0):
        super().__init__()
        if preset not in FEATURE_PRESETS:
            raise ValueError(f"unknown preset '{preset}' (one of {', '.join(PRESETS)})")
        _check_correction(correction, band_px, crack_px, fluid_px, fluid_rule, fluid_border,
                          moved_detail, clamp_px)
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
        self.correction = correction if self.residual else "everywhere"
        self.band_px = int(band_px)
        self.crack_px = None if crack_px is None else int(crack_px)
        self.fluid_px = int(fluid_px)
        self.fluid_rule = fluid_rule
        self.fluid_border = fluid_border
        self.moved_detail = moved_detail
        self.clamp_px = clamp_px
        self.gate = GeometryGate() if self.correction == "gate" else None
        self.refiner: ImgDecoder | None = None
        self.add_refiner(refiner)

    def add_refiner(self, width: int) -> None:
        """Give the model a refiner of base width ``width`` (0: none; nothing changes), whose
        correction starts at zero (logged). A model that has one keeps it; another width is a
        ValueError."""
        width = int(width)
        if width < 0:
            raise ValueError(f"refiner width {width}: give 0 (none) or a base width such as 8")
        if width == 0 or (self.refiner is not None and width == self.refiner_width):
            return
        if self.refiner is not None:
            raise ValueError(f"the model holds a refiner of width {self.refiner_width}, not "
                             f"{width}")
        if not self.residual:
            raise ValueError(f"the '{self.preset}' preset has no residual correction to refine")
        dev = self.img_decoder.outc.conv.weight.device
        self.refiner = ImgDecoder(in_ch=self.img_decoder.in_ch, out_ch=3, base=width,
                                  extra_ch=self.img_decoder.extra_ch + REFINER_EXTRA).to(dev)
        nn.init.zeros_(self.refiner.outc.conv.weight)
        nn.init.zeros_(self.refiner.outc.conv.bias)
        log.info("the decoder's correction gets a refiner of width %d (starting at zero)", width)

    @property
    def refiner_width(self) -> int:
        """The refiner's base width (0: none)."""
        return 0 if self.refiner is None else self.refiner.firstconv.out_channels

    def set_correction(self, correction: str, band_px: int = BAND_PX,
                       crack_px: int | None = None, fluid_px: int = 0,
                       fluid_rule: str = "free", fluid_border: bool = True,
                       moved_detail: bool = False, clamp_px: int = 0) -> None:
        """Switch where the correction applies (to train on in another way): a fresh gate
        for ``gate``; leaving ``gate`` drops the gate's weights. Logged when it changes."""
        _check_correction(correction, band_px, crack_px, fluid_px, fluid_rule, fluid_border,
                          moved_detail, clamp_px)
        crack_px = None if crack_px is None else int(crack_px)
        new = (correction, int(band_px), crack_px, int(fluid_px), fluid_rule, fluid_border,
               moved_detail, clamp_px)
        if not self.residual or new == (self.correction, self.band_px, self.crack_px,
                                        self.fluid_px, self.fluid_rule, self.fluid_border,
                                        self.moved_detail, self.clamp_px):
            return
        log.info("the decoder's correction: %s -> %s%s", self.correction, correction,
                 _band_text(*new[1:]) if correction == "band" else "")
        (self.correction, self.band_px, self.crack_px, self.fluid_px, self.fluid_rule,
         self.fluid_border, self.moved_detail, self.clamp_px) = new
        if correction == "gate" and self.gate is None:
            self.gate = GeometryGate().to(self.img_decoder.outc.conv.weight.device)
        elif correction != "gate":
            self.gate = None

    @property
    def feature_channels(self) -> int:
        return FEATURE_PRESETS[self.preset]["out_ch"]

    def features(self, ldi: LayeredDepthImage) -> Tensor:
        """Return the point features ``(L, 4 + C, H, W)`` of ``ldi``'s layers.

        The feature network halves its input four times and pads its skip connections where
        a side does not halve evenly, which stretches its output against the pixels; so the
        layers are padded to sides that are multiples of 16 (edge pixels repeated) and the
        features cropped back."""
        cover = ldi.coverage.to(ldi.color.dtype)
        rgba = torch.cat([ldi.color * cover, cover], dim=1)
        return torch.cat([ldi.color, torch.ones_like(ldi.depth), self.feature_map(rgba)], dim=1)

    def feature_map(self, rgba: Tensor) -> Tensor:
        """The feature network's ``(L, C, H, W)`` of premultiplied colour and coverage
        ``rgba (L, 4, H, W)`` (padded to multiples of 16 and cropped back)."""
        h, w = rgba.shape[-2:]
        rgba = _pad16(rgba)
        feats = self.feature_net(rgba)
        feats = F.interpolate(feats, size=rgba.shape[-2:], mode="bilinear", align_corners=True)
        return feats[..., :h, :w]

    def decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        """Return RGB ``(1, 3, H, W)`` from the splatted frames (module docstring)."""
        return self.decode_batch([forward], [backward], [time])

    def decode_batch(self, forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                     times: list[float]) -> Tensor:
        """:meth:`decode` of several frames of one size at once ``(B, 3, H, W)``: the image
        decoder runs on the batch (its group norms are per sample, so each frame comes out
        as :meth:`decode` alone would make it)."""
        x0s, x1s, ts = [], [], []
        for forward, backward, time in zip(forwards, backwards, times):
            x0, x1 = self._maps(forward, backward)
            x0s.append(x0), x1s.append(x1), ts.append(time if backward is not None else 0.0)
        x0, x1 = torch.cat(x0s), torch.cat(x1s)
        h, w = x0.shape[-2:]
        x0, x1 = _pad16(x0), _pad16(x1)
        t = ts[0] if len(ts) == 1 else torch.tensor(ts, dtype=x0.dtype, device=x0.device).view(-1, 1, 1, 1)
        if not self.residual:
            return self.img_decoder(x0, x1, t)[..., :h, :w]
        from .decoder import CompositingDecoder

        # The composite depends on the points' colours and the splats' geometry only,
        # neither of which the networks make: no gradient to record.
        with torch.no_grad():
            base, confidence = CompositingDecoder().fill_batch(forwards, backwards, times)
            moved = torch.cat([_moved(f, b) for f, b in zip(forwards, backwards)])
            extra = _pad16(torch.cat([base, confidence, moved], 1))
            if self.correction == "band":
                band = hole_band(confidence, self.band_px, self.crack_px)
                fluid = None
                if self.fluid_px:
                    fluid = torch.cat([moving_opacity(f, b) * (time > 0)
                                       for f, b, time in zip(forwards, backwards, ts)])
                    fluid = fluid_band(fluid, self.fluid_px)
                    if not self.fluid_border:
                        outside = torch.cat([from_outside(f, b)
                                             for f, b in zip(forwards, backwards)])
                        fluid = fluid * (1.0 - _spread(outside, BORDER_FADE_PX | 1))
                    if self.fluid_rule == "between":
                        lo, hi = _cloud_range(forwards, backwards, base)
                    elif self.fluid_rule == "smooth":
                        thin = torch.cat([thinness(f, b) for f, b in zip(forwards, backwards)])
                    elif self.fluid_rule == "free":
                        band, fluid = torch.maximum(band, fluid), None
                if self.moved_detail:  # outside both bands, where points have moved
                    covered = band if fluid is None else torch.maximum(band, fluid)
                    moved_px = torch.cat([_moved_px(f, b) for f, b in zip(forwards, backwards)])
                    rest = (1.0 - covered) * (moved_px / MOVED_DETAIL_PX).clamp(0, 1)
            if self.gate is not None:  # confidence, displacement, alpha, disparity, time
                time = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
                time = time.expand(x0.shape[0], 1, *x0.shape[-2:])
                geometry = torch.cat([extra[:, 3:], x0[:, 3:4], x1[:, 3:4], x0[:, -1:],
                                      x1[:, -1:], time], 1)
        out = 2.0 * (self.img_decoder(x0, x1, t, extra) - 0.5)
        if self.refiner is not None:
            out = out + 2.0 * (self.refiner(x0, x1, t, torch.cat([extra, out], 1)) - 0.5)
        if self.correction == "everywhere":  # our weights of the sixth session
            return (base + out[..., :h, :w]).clamp(0, 1)
        if self.correction == "band":
            out = out[..., :h, :w]
            if self.clamp_px:  # covered pixels stay within their neighbours' colours
                low, high = local_range(base, self.clamp_px)

                def hold(x: Tensor) -> Tensor:
                    return torch.minimum(torch.maximum(base + x, low), high) - base

                frame = base + band * (out + confidence * (hold(out) - out))
            else:
                def hold(x: Tensor) -> Tensor:
                    return x

                frame = base + band * out
            if fluid is not None and self.fluid_rule == "between":
                frame = frame + (1.0 - band) * fluid * hold(torch.clamp(base + out, lo, hi) - base)
            elif fluid is not None and self.fluid_rule == "smooth":
                smooth = out + thin * (_blur(out, SMOOTH_SIGMA) - out)
                frame = frame + (1.0 - band) * fluid * hold(smooth)
            elif fluid is not None:  # detail: the correction less its blur
                frame = frame + (1.0 - band) * fluid * hold(out - _blur(out, DETAIL_SIGMA))
            if self.moved_detail:
                frame = frame + rest * hold(out - _blur(out, MOVED_DETAIL_SIGMA))
            return frame.clamp(0, 1)
        out = (self.gate(geometry) * out)[..., :h, :w]
        return (base + out - confidence * _blur(out, DETAIL_SIGMA)).clamp(0, 1)

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


def _band_text(band_px: int, crack_px: int | None, fluid_px: int = 0,
               fluid_rule: str = "free", fluid_border: bool = True,
               moved_detail: bool = False, clamp_px: int = 0) -> str:
    rule = {"free": "", "between": " (between the clouds)", "detail": " (detail only)",
            "smooth": " (smoothed where a cloud is thin)"}[fluid_rule]
    rule += "" if fluid_border else " (not over the photo's border)"
    return (f" {band_px} px" + (f", cracks {crack_px} px" if crack_px is not None else "")
            + (f", fluid {fluid_px} px{rule}" if fluid_px else "")
            + (", its detail where points moved elsewhere" if moved_detail else "")
            + (f", covered pixels within their {clamp_px}x{clamp_px} neighbours' colours"
               if clamp_px else ""))


def _cloud_range(forwards: list[SplattedFrame], backwards: list[SplattedFrame | None],
                 base: Tensor, full_coverage: float = 0.5) -> tuple[Tensor, Tensor]:
    """Per pixel and channel, the lowest and highest of the composite ``base (B, 3, H, W)``
    and the forward and the backward cloud's own colours ``(B, 3, H, W)`` (each where it
    covers the pixel by at least ``full_coverage``; where it does not, or there is no
    backward frame, it does not widen the range)."""
    lows, highs = [], []
    for i, (forward, backward) in enumerate(zip(forwards, backwards)):
        b = base[i:i + 1]
        lo, hi = b, b
        for frame in (forward, backward):
            if frame is None:
                continue
            coverage = frame.features[:, 3:4]
            color = torch.where(coverage >= full_coverage,
                                frame.features[:, :3] / coverage.clamp_min(1e-6), b)
            lo, hi = torch.minimum(lo, color), torch.maximum(hi, color)
        lows.append(lo), highs.append(hi)
    return torch.cat(lows), torch.cat(highs)


def thinness(forward: SplattedFrame, backward: SplattedFrame | None) -> Tensor:
    """``(1, 1, H, W)`` in ``[0, 1]``: how thinly the forward or the backward frame covers a
    pixel, ``(THIN_FULL - alpha) / THIN_SPAN`` of the lower of the two opacities, clipped,
    then max-filtered over 3x3 pixels (so the rows beside a thin one count too). Points that
    a stretching flow pulls apart cover their rows so; holes are the hole band's."""
    alpha = forward.alpha if backward is None else torch.minimum(forward.alpha, backward.alpha)
    thin = ((THIN_FULL - alpha) / THIN_SPAN).clamp(0, 1)
    return F.max_pool2d(thin, 3, 1, 1)


def local_range(x: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The lowest and the highest value ``(B, C, H, W)`` of ``x (B, C, H, W)`` over the
    centred ``size x size`` window of each pixel and channel (``size`` odd; the part of the
    window inside the frame)."""
    return -max_filter(-x, size), max_filter(x, size)


def _blur(x: Tensor, sigma: float) -> Tensor:
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


def _moved_px(forward: SplattedFrame, backward: SplattedFrame | None) -> Tensor:
    """``(1, 1, H, W)``: how far, in pixels, the points seen in the forward or the backward
    frame have moved from their pixels in the photo, the larger (0 without displacement)."""
    out = forward.alpha.new_zeros(forward.alpha.shape)
    for frame in (forward, backward):
        if frame is not None and frame.displacement is not None:
            out = torch.maximum(out, frame.displacement.norm(dim=1, keepdim=True))
    return out


def _moved(forward: SplattedFrame, backward: SplattedFrame | None) -> Tensor:
    """The decoder's displacement channels ``(1, 4, H, W)`` of one frame (zero where a
    splat carries none); without a backward frame the forward one stands in, as in
    :meth:`SpaceTimeModel._maps`."""
    maps = []
    for frame in (forward, backward if backward is not None else forward):
        if frame.displacement is None:
            maps.append(frame.alpha.new_zeros(1, 2, *frame.alpha.shape[-2:]))
        else:
            maps.append(torch.tanh(frame.displacement / DISPLACEMENT_SCALE) * frame.alpha)
    return torch.cat(maps, 1)


def _work_shape(h: int, w: int, work_size: int | None,
                reference: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """``(h, w)`` scaled as the frame ``reference`` (default ``(h, w)`` itself) is scaled so
    its longer side is ``work_size``, or None where that is no longer than ``work_size`` (or
    ``work_size`` is None)."""
    longest = max(reference or (h, w))
    if work_size is None or longest <= work_size:
        return None
    scale = work_size / longest
    return max(1, round(h * scale)), max(1, round(w * scale))


def _shrink(frame: SplattedFrame, shape: tuple[int, int]) -> SplattedFrame:
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


#: A model's preset and rules (attribute names): the settings that the members of a
#: :class:`SpaceTimeEnsemble`, or the ingredients of a soup, must share.
SETTINGS = ("preset", "correction", "band_px", "crack_px", "fluid_px", "fluid_rule",
                   "fluid_border", "moved_detail", "clamp_px", "refiner_width")


class SpaceTimeEnsemble(nn.Module):
    """An output ensemble of residual :class:`SpaceTimeModel` s: their frames mixed by fixed
    ``weights`` (normalised to sum to 1). The members share preset and rules
    (:data:`SETTINGS`), so the mix applies where each would correct.

    Each member's feature network sees the same layers; their features go side by side after
    the shared ``[RGB, 1]`` (:meth:`features`), so one splat carries all of them (splatting is
    linear per channel), and :meth:`decode` hands each member its own channels. The frames
    are those of rendering once with each member and mixing them, as
    ``benchmarks/decoder_blend.py`` scores them."""

    def __init__(self, members: list[SpaceTimeModel], weights: list[float]):
        super().__init__()
        if len(members) < 2 or len(weights) != len(members):
            raise ValueError("an ensemble needs two or more members and one weight each")
        if not all(m.residual for m in members):
            raise ValueError("only residual presets (base, small) make an ensemble")
        if not all(w > 0 for w in weights):
            raise ValueError("give each member a weight above 0")
        for name in SETTINGS:
            values = {repr(getattr(m, name)) for m in members}
            if len(values) > 1:
                raise ValueError(f"the members differ in {name} ({', '.join(sorted(values))})")
        self.members = nn.ModuleList(members)
        total = float(sum(weights))
        self.weights = tuple(float(w) / total for w in weights)

    def __getattr__(self, name: str):
        # The shared settings (preset, residual, correction, widths...) are the first member's.
        if name in SETTINGS or name in ("residual", "refiner"):
            return getattr(self._modules["members"][0], name)
        return super().__getattr__(name)

    @property
    def feature_channels(self) -> int:
        return sum(m.feature_channels for m in self.members)

    # ``[RGB, 1]`` and the feature map, as one network's (here every member's, in order).
    features = SpaceTimeModel.features

    def feature_map(self, rgba: Tensor) -> Tensor:
        """Every member's feature map of ``rgba``, side by side in member order."""
        return torch.cat([m.feature_map(rgba) for m in self.members], dim=1)

    def _member_frame(self, frame: SplattedFrame | None, i: int) -> SplattedFrame | None:
        if frame is None:
            return None
        start = 4 + sum(m.feature_channels for m in self.members[:i])
        own = frame.features[:, start:start + self.members[i].feature_channels]
        return frame._replace(features=torch.cat([frame.features[:, :4], own], 1))

    def decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        """The members' frames (each clamped to [0, 1]) mixed by :attr:`weights`."""
        frames = [m.decode(self._member_frame(forward, i), self._member_frame(backward, i),
                           time).clamp(0, 1) for i, m in enumerate(self.members)]
        return sum(w * f for w, f in zip(self.weights, frames)).clamp(0, 1)


def _quantizable(value: Tensor) -> bool:
    """Whether ``value`` may be stored as int8: a floating tensor of two or more dimensions."""
    return value.is_floating_point() and value.dim() >= 2


def _quantize(state: dict[str, Tensor], keys=None) -> dict[str, Tensor]:
    """``state`` with the floating tensors of two or more dimensions named in ``keys`` (all
    of them by default) stored as int8, one scale per output channel (its largest magnitude
    over 127) in ``KEY.int8_scale`` (fp32); the rest fp16."""
    out = {}
    for key, value in state.items():
        value = value.detach().cpu()
        if _quantizable(value) and (keys is None or key in keys):
            flat = value.float().reshape(value.shape[0], -1)
            scale = flat.abs().amax(1).clamp_min(1e-12) / 127.0
            out[key] = (flat / scale[:, None]).round().clamp(-127, 127).to(torch.int8) \
                .reshape(value.shape).contiguous()
            out[key + INT8_SCALE] = scale.contiguous()
        else:
            out[key] = (value.half() if value.is_floating_point() else value).contiguous()
    return out


def _largest_first_int8(state: dict[str, Tensor], meta: dict[str, str], max_bytes: int,
                        tie=lambda key: 0.0) -> dict[str, Tensor]:
    """``state`` stored within ``max_bytes`` as a safetensors file with ``meta``: its largest
    quantizable tensors as int8 (:func:`_quantize`), as few as that takes, the rest fp16.
    The largest tensors go first because each saves the most bytes and spreads its rounding
    over the most weights; the small first and last layers stay fp16; among tensors of one
    size, those of the lower ``tie(key)`` first. Raises ValueError where even int8
    throughout does not fit."""
    from safetensors.torch import save

    order = sorted((k for k, v in state.items() if _quantizable(v)),
                   key=lambda k: (-state[k].numel(), tie(k), k))
    chosen: set[str] = set()
    while True:
        stored = _quantize(state, chosen)
        excess = len(save(stored, metadata=meta)) - max_bytes
        if excess <= 0:
            return stored
        if len(chosen) == len(order):
            raise ValueError(f"even in int8 throughout the file takes "
                             f"{(excess + max_bytes) / 1e6:.2f} MB, over {max_bytes / 1e6:g} MB")
        # Add tensors until their int8 saving covers the excess (checked by writing again).
        for key in order:
            if key not in chosen:
                chosen.add(key)
                excess -= state[key].numel() - 4 * state[key].shape[0]
                if excess <= 0:
                    break


def _dequantize(state: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """``state`` with int8-stored tensors (:func:`_quantize`) back in fp32; others as they are."""
    if not any(k.endswith(INT8_SCALE) for k in state):
        return state
    out = {}
    for key, value in state.items():
        if key.endswith(INT8_SCALE):
            continue
        scale = state.get(key + INT8_SCALE)
        if scale is None:
            out[key] = value
            continue
        if value.dtype != torch.int8 or scale.shape != value.shape[:1]:
            raise UserError(f"'{path}' holds a malformed int8 tensor '{key}': download or make "
                            "the file again")
        out[key] = value.float() * scale.float().reshape(-1, *([1] * (value.dim() - 1)))
    return out


def save_ensemble(ensemble: SpaceTimeEnsemble, path: str | Path, int8: bool = False,
                  metadata: dict | None = None, max_bytes: int | None = None) -> None:
    """Write ``ensemble`` as one safetensors file (each member's tensors under ``memberI.``,
    fp16, or int8 with ``int8``; the shared rules and the weights in the metadata), via a
    temporary name. ``max_bytes``: store the largest weights as int8, as few as keep the file
    within that size, the rest fp16 (:func:`_largest_first_int8`; ValueError where it
    cannot); not with ``int8``."""
    if int8 and max_bytes is not None:
        raise ValueError("give int8 (every weight) or max_bytes (the largest), not both")
    state = {}
    for i, member in enumerate(ensemble.members):
        own = {k: v.detach().to("cpu") for k, v in member.state_dict().items()}
        state.update({f"member{i}.{k}": v for k, v in own.items()})
    meta = {**_extra_metadata(metadata), **_rules_metadata(ensemble.members[0]),
            "ensemble": json.dumps(list(ensemble.weights))}
    if max_bytes is not None:
        # Among tensors of one size, those of the members that weigh least in the mix first.
        weight = {f"member{i}": w for i, w in enumerate(ensemble.weights)}
        state = _largest_first_int8(state, {**meta, "storage": "int8 and fp16"}, max_bytes,
                                    lambda key: weight[key.split(".", 1)[0]])
        quantized = sum(k.endswith(INT8_SCALE) for k in state)
        meta["storage"] = ("int8 and fp16" if quantized else "fp16")
    else:
        state = _quantize(state) if int8 else _quantize(state, ())
        meta["storage"] = "int8" if int8 else "fp16"
    _write_safetensors(state, meta, path)


def _load_ensemble(path: Path, meta: dict[str, str], state: dict[str, Tensor]
                   ) -> SpaceTimeEnsemble:
    """The :class:`SpaceTimeEnsemble` of our file ``path`` (:func:`save_ensemble`)."""
    try:
        weights = [float(w) for w in json.loads(meta["ensemble"])]
    except (ValueError, TypeError):
        raise UserError(f"'{path}' has malformed ensemble weights '{meta['ensemble']}' in its "
                        "metadata: make the file again") from None
    members = []
    for i in range(len(weights)):
        prefix = f"member{i}."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not own:
            raise UserError(f"'{path}' names {len(weights)} ensemble members but holds no "
                            f"tensors of member {i}: make the file again")
        members.append(_fit_state(_model_of(path, meta, own), own, path))
    prefixes = {f"member{i}" for i in range(len(weights))}
    extra = [k for k in state if k.split(".", 1)[0] not in prefixes]
    if extra:
        raise UserError(f"'{path}' holds tensors of no ensemble member (e.g. '{extra[0]}'): "
                        "make the file again")
    try:
        return SpaceTimeEnsemble(members, weights).eval()
    except ValueError as e:
        raise UserError(f"'{path}': {e}") from None


class LearnedFeatures:
    """:class:`~cinemagraph.models.features.FeatureExtractor` on a :class:`SpaceTimeModel`.

    ``work_size``: the layers of a photo whose longer side exceeds it go through the feature
    network shrunk as the photo is shrunk to it (area means of the premultiplied colour and
    coverage), so at the scale at which :class:`LearnedDecoder` sees the frame, and the
    features come back enlarged (bilinear): the networks run near the scale they were
    trained at (None: always at the layers' own size). The layers hold the photo and the
    border a camera path needs around it (:attr:`LayeredDepthImage.border`), which does not
    count: a 448-px photo's layers keep their size at a working size of 448."""

    def __init__(self, model: SpaceTimeModel, description: str, work_size: int | None = None):
        self.model, self.description, self.work_size = model, description, work_size
        self.channels = 4 + model.feature_channels

    @torch.no_grad()
    def __call__(self, ldi: LayeredDepthImage) -> Tensor:
        h, w = ldi.size
        shape = _work_shape(h, w, self.work_size, ldi.photo_size)
        if shape is None:
            return self.model.features(ldi)
        cover = ldi.coverage.to(ldi.color.dtype)
        rgba = F.interpolate(torch.cat([ldi.color * cover, cover], 1), size=shape, mode="area")
        feats = self.model.feature_map(rgba)
        feats = F.interpolate(feats, size=(h, w), mode="bilinear", align_corners=False)
        return torch.cat([ldi.color, torch.ones_like(ldi.depth), feats], dim=1)


class LearnedDecoder:
    """:class:`~cinemagraph.models.decoder.Decoder` on a :class:`SpaceTimeModel`."""

    def __init__(self, model: SpaceTimeModel, description: str, dtype: torch.dtype = torch.float32,
                 work_size: int | None = None):
        self.model, self.description, self.dtype = model, description, dtype
        self.reads_displacement = model.residual
        self.work_size = work_size

    @torch.no_grad()
    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        shape = _work_shape(*forward.alpha.shape[-2:], self.work_size)
        if shape is None or not self.model.residual:
            return self._decode(forward, backward, time)
        # A residual decoder's correction, made at the working size and enlarged onto the
        # built-in composite of the frame's own size.
        from .decoder import CompositingDecoder

        small = (_shrink(forward, shape), None if backward is None else _shrink(backward, shape))
        correction = self._decode(*small, time) - CompositingDecoder()(*small, time)
        correction = F.interpolate(correction, size=forward.alpha.shape[-2:], mode="bilinear",
                                   align_corners=False)
        return (CompositingDecoder()(forward, backward, time) + correction).clamp(0, 1)

    def _decode(self, forward: SplattedFrame, backward: SplattedFrame | None, time: float) -> Tensor:
        if self.dtype != torch.float32:
            with torch.autocast(forward.features.device.type, dtype=self.dtype):
                return self.model.decode(forward, backward, time).float().clamp(0, 1)
        return self.model.decode(forward, backward, time).clamp(0, 1)


def _rules_metadata(model: SpaceTimeModel) -> dict[str, str]:
    """The metadata that :func:`load_spacetime` reads back into ``model``'s preset and rules."""
    meta = {"preset": model.preset}
    if model.residual:
        meta.update(correction=model.correction, band_px=str(model.band_px))
        if model.crack_px is not None:
            meta.update(crack_px=str(model.crack_px))
        if model.fluid_px:
            meta.update(fluid_px=str(model.fluid_px))
            if model.fluid_rule != "free":
                meta.update(fluid_rule=model.fluid_rule)
            if not model.fluid_border:
                meta.update(fluid_border="false")
        if model.moved_detail:
            meta.update(moved_detail="true")
        if model.clamp_px:
            meta.update(clamp_px=str(model.clamp_px))
        if model.refiner is not None:
            meta.update(refiner=str(model.refiner_width))
    return meta


def _write_safetensors(state: dict[str, Tensor], meta: dict[str, str], path: str | Path) -> None:
    """Write ``state`` with ``meta`` via a temporary name, making the folder if needed."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    # safetensors 0.8 writes through a temporary file of mode 0600 whatever the umask
    # (safetensors/safetensors#782): give the file the mode any other new file gets.
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp.replace(path)


def _extra_metadata(metadata: dict | None) -> dict[str, str]:
    return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in (metadata or {}).items()}


def save_spacetime(model: SpaceTimeModel, path: str | Path, half: bool = True,
                   metadata: dict | None = None) -> None:
    """Write ``model`` as our safetensors (fp16 unless ``half`` is False), via a temporary
    name, making the folder if needed."""
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"preset": model.preset, **_extra_metadata(metadata)}
    meta.update(_rules_metadata(model))
    _write_safetensors(state, meta, path)


def load_spacetime(path: str | Path) -> SpaceTimeModel | SpaceTimeEnsemble:
    """Return the model in ``path``: the official training checkpoint or our safetensors
    (one network, or an output ensemble written by :func:`save_ensemble`)."""
    from .zoo import REGISTRY, extract_state_dict, load_weights, read_checkpoint

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            preset = meta.get("preset", "official")
        except Exception as e:
            raise UserError(f"cannot read '{path}' ({type(e).__name__}: {e}); download or "
                            "train it again") from None
        if preset not in FEATURE_PRESETS:
            raise UserError(f"'{path}' names an unknown preset '{preset}'")
        state = read_checkpoint(path)
        if "ensemble" in meta:
            return _load_ensemble(path, meta, state)
        return _fit_state(_model_of(path, meta, state), state, path)
    model = SpaceTimeModel("official")
    top = read_checkpoint(path)
    for name in ("feature_net", "img_decoder"):
        spec = REGISTRY[name]
        load_weights(getattr(model, name), extract_state_dict(top, spec), spec, str(path))
    return model.eval()


def _model_of(path: Path, meta: dict[str, str], state: dict[str, Tensor]) -> SpaceTimeModel:
    """The (untrained) model that the metadata ``meta`` of our file ``path`` describes; ``state``
    tells files from before the metadata named the correction."""
    preset = meta.get("preset", "official")
    # Files from before the metadata said: gated if they hold a gate, else everywhere.
    correction = meta.get("correction") or (
        "gate" if any(k.startswith("gate.") for k in state) else "everywhere")
    try:
        band_px = int(meta.get("band_px", BAND_PX))
        crack_px = int(meta["crack_px"]) if "crack_px" in meta else None
        fluid_px = int(meta.get("fluid_px", 0))
        clamp_px = int(meta.get("clamp_px", 0))
        refiner = int(meta.get("refiner", 0))
    except ValueError:
        raise UserError(f"'{path}' has a malformed band width ('{meta.get('band_px')}', "
                        f"cracks '{meta.get('crack_px')}', fluid "
                        f"'{meta.get('fluid_px')}', clamp '{meta.get('clamp_px')}', "
                        f"refiner '{meta.get('refiner')}')") from None
    border = meta.get("fluid_border", "true")
    if border not in ("true", "false"):
        raise UserError(f"'{path}' has a malformed fluid border '{border}' in its metadata "
                        "(true or false)")
    moved = meta.get("moved_detail", "false")
    if moved not in ("true", "false"):
        raise UserError(f"'{path}' has a malformed moved detail '{moved}' in its metadata "
                        "(true or false)")
    try:
        model = SpaceTimeModel(preset, correction, band_px, crack_px, fluid_px,
                               meta.get("fluid_rule", "free"), border == "true",
                               moved == "true", clamp_px, refiner)
    except ValueError as e:
        raise UserError(f"'{path}': {e} in its metadata") from None
    if model.residual and correction == "everywhere":
        log.info("'%s' predates the decoder's gate: its correction applies everywhere", path)
    return model


def _fit_state(model: SpaceTimeModel, state: dict[str, Tensor], path: Path) -> SpaceTimeModel:
    """``model`` holding ``state`` (int8-stored weights restored, older layouts carried over),
    in eval mode; a state that does not fit is a one-line error."""
    preset = model.preset
    state = _carry_over(_dequantize(state, path), model, path)
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise UserError(f"'{path}' does not fit the '{preset}' preset ({len(missing)} "
                        f"missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped "
                        f"keys, e.g. {(missing + unexpected + wrong)[:2]})")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _carry_over(state: dict, model: SpaceTimeModel, path: Path) -> dict:
    """``state`` of a residual preset saved before the decoder saw the displacement channels,
    with zero weights on them (so it renders as it did; logged); other states unchanged."""
    key = "img_decoder.firstconv.weight"
    own = model.state_dict().get(key)
    old = state.get(key)
    if (model.residual and own is not None and old is not None
            and old.shape[1] == own.shape[1] - DISPLACEMENT_CHANNELS):
        log.info("'%s' predates the decoder's displacement inputs: they start at zero weight", path)
        zeros = old.new_zeros(old.shape[0], DISPLACEMENT_CHANNELS, *old.shape[2:])
        state = {**state, key: torch.cat([old, zeros], 1)}
    return state


def find_spacetime(weights_dir: str | Path | None = None) -> Path | None:
    """Return the official training checkpoint (``model_*.pth``, the highest step) found in
    the weight directories, else our own weights file, else None."""
    from .zoo import weight_dirs

    dirs = weight_dirs(weights_dir)
    for directory in dirs:
        found = sorted(directory.glob("model_*.pth"),
                       key=lambda p: int(p.stem[6:]) if p.stem[6:].isdigit() else -1)
        if found:
            return found[-1]
    for directory in dirs:
        if (directory / OWN_WEIGHTS).is_file():
            return directory / OWN_WEIGHTS
    return None


def learned_components(path: str | Path, device=None, work_size: int | None = WORK_SIZE
                       ) -> tuple[LearnedFeatures, LearnedDecoder]:
    """Return the feature extractor and decoder of the weight file ``path`` on ``device``;
    our residual presets run at ``work_size`` (:data:`WORK_SIZE`; None: at the frame's own
    size), the official networks always at the frame's own size."""
    path = Path(path)
    model = load_spacetime(path).to(device)
    kind = "official" if path.suffix == ".pth" else f"ours, preset '{model.preset}'"
    if isinstance(model, SpaceTimeEnsemble):
        kind += (f", an output ensemble of {len(model.members)} networks weighted "
                 + " / ".join(f"{w:.3g}" for w in model.weights))
    if model.residual:
        kind += f", correction {model.correction}"
        kind += (_band_text(model.band_px, model.crack_px, model.fluid_px, model.fluid_rule,
                            model.fluid_border, model.moved_detail, model.clamp_px)
                 if model.correction == "band" else "")
        kind += f", refiner {model.refiner_width}" if model.refiner is not None else ""
        kind += (f", run at {work_size} px on larger frames" if work_size is not None
                 else ", run at the frame's size")
    else:
        work_size = None
    description = f"learned feature network + image decoder ({kind}, '{path}')"
    return (LearnedFeatures(model, description, work_size=work_size),
            LearnedDecoder(model, description, work_size=work_size))
