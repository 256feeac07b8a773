"""The layer-by-layer procedure that turns an RGBD photo into a :class:`LayeredDepthImage`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conventions import check_shape
from ..filters import dilate, erode, joint_weighted_median, push_pull_fill
from ..motion.field import MotionField
from .inpaint import Inpainter, PushPullInpainter
from .layers import assign_layers, disparity_bins
from .scene import LayeredDepthImage

log = logging.getLogger(__name__)

#: How far (a fraction of its window's disparity range) from both ends of that range a
#: pixel's disparity lies where depth-edge sharpening may change it: a step that a file or a
#: model gives crisp has no such pixels, a blurred or resized one a band of them.
BLURRED = 0.1
#: A window whose disparity spans at least this fraction of its largest holds a depth
#: discontinuity, not a slope: a ground plane's span over a window is a few hundredths of
#: its disparity in its near rows (its rows within about ``7 r`` of the horizon pass this
#: test; there the step must also open a pixel, ``1 / margin``).
STEP = 0.25
#: The sharpening radius grows with the photo, to this fraction of its long side (and at least
#: ``sharpen_radius``): depth maps come from models and files of 384-640 pixels, so the ramp
#: of a step widens with the photo they are resized to (9 pixels in a 640-pixel file, 30 at
#: 2100 pixels), and a median narrower than the ramp leaves its middle between the sides.
RADIUS_FRACTION = 1 / 160


@dataclass
class LDISettings:
    """Settings of :func:`build_layered_depth_image`.

    ``max_layers``: cap on the number of layers.
    ``margin``: how far (fraction of the long side) behind a nearer layer a layer is
    inpainted; camera paths move near content by at most about this much.
    ``context_erosion``: pixels removed from the context border, where colours mix
    foreground and background.
    ``behind``: inpainted depth is kept at least this factor behind the nearer layer that
    hides it.
    ``sharpen_iterations``, ``sharpen_radius``: depth-edge sharpening before layering (a
    colour-guided weighted median of disparity, :func:`~cinemagraph.filters.joint_weighted_median`;
    0 iterations turns it off; the radius grows to :data:`RADIUS_FRACTION` of the long side
    on large photos, see :func:`sharpen_radius`). Without it, the pixels on a blurred depth edge get depths
    between the two sides and spread into streaks when the camera moves. It changes the
    depth only where layering needs it: on the pixels of a blurred step (a window of
    ``2 r + 1`` pixels, ``r`` the radius, whose disparity spans a step that a camera move of the
    ``margin`` opens by a pixel and at least :data:`STEP` of its largest disparity, a
    discontinuity and not a slope, the pixel :data:`BLURRED` of that span away from both its
    ends) within ``r * sharpen_iterations``
    pixels of an edge between the layers that the unsharpened depth splits into. Elsewhere
    the depth given, by a file or a model, is kept as it is, thin things and corners
    included (a median would erode them); the log says how much changed.
    ``inpaint``: False leaves every layer with only what the photo shows (an ablation).
    """

    max_layers: int = 4
    margin: float = 0.06
    context_erosion: int = 2
    behind: float = 1.02
    sharpen_iterations: int = 3
    sharpen_radius: int = 3
    inpaint: bool = True


def layer_edges(labels: Tensor) -> Tensor:
    """``(1, 1, H, W)`` bool: the pixels of ``labels (1, 1, H, W)`` with a 4-neighbour of
    another layer."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    dy = labels[..., 1:, :] != labels[..., :-1, :]
    dx = labels[..., :, 1:] != labels[..., :, :-1]
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    return edge


def sharpen_radius(settings: LDISettings, size: tuple[int, int]) -> int:
    """The sharpening radius in pixels for a photo of ``size (H, W)``: ``sharpen_radius``, or
    :data:`RADIUS_FRACTION` of the long side where that is more."""
    return max(settings.sharpen_radius, round(RADIUS_FRACTION * max(size)))


def _sharpened(image: Tensor, depth: Tensor, disparity: Tensor, bins: Tensor, margin: int,
               settings: LDISettings) -> tuple[Tensor, Tensor]:
    """The disparity and depth after depth-edge sharpening, changed only on blurred steps
    near the edges of the layers ``bins`` split ``disparity`` into (:class:`LDISettings`;
    ``margin`` in pixels)."""
    layers = assign_layers(disparity, bins)
    radius = sharpen_radius(settings, disparity.shape[-2:])
    reach = radius * settings.sharpen_iterations
    k = 2 * radius + 1
    high = F.max_pool2d(disparity, k, stride=1, padding=radius)
    low = -F.max_pool2d(-disparity, k, stride=1, padding=radius)
    span = high - low
    # A step (a discontinuity that a camera move of the margin opens by a pixel), and the
    # pixel between its two sides: a slope is no step, a crisp step has no pixel between.
    # Steep slopes (the near rows of a ground plane) span more than a pixel's opening over
    # the window too; taken for steps, their pixels got the colour-guided median's values,
    # and a textured ground plane a speckled depth.
    blurred = ((span >= 1.0 / margin) & (span >= STEP * high)
               & (disparity - low > BLURRED * span) & (high - disparity > BLURRED * span))
    near_edge = dilate(layer_edges(layers), reach) & blurred
    if not near_edge.any():
        log.info("depth-edge sharpening: no blurred step at a layer edge, depth unchanged")
        return disparity, depth
    # The median aligns the step with the colour edge (each iteration by its radius); half
    # the window's radius is enough there and costs a quarter (the window's area).
    sharp = joint_weighted_median(disparity, image, max(settings.sharpen_radius, radius // 2),
                                  iterations=settings.sharpen_iterations)
    # The median moves a pixel of the ramp towards the side its colour belongs to, but keeps
    # a value of the ramp: left between the sides, it would float as a ragged sliver between
    # them once the camera moves. On a discontinuity (not a slope) it takes the nearer side
    # of its window, again and again, so that a ramp wider than the window reaches its ends.
    for _ in range(settings.sharpen_iterations):
        top = F.max_pool2d(sharp, k, stride=1, padding=radius)
        bottom = -F.max_pool2d(-sharp, k, stride=1, padding=radius)
        sharp = torch.where(near_edge, torch.where(sharp - bottom < top - sharp, bottom, top),
                            sharp)
    sharp = torch.where(near_edge, sharp, disparity)
    changed = (sharp != disparity).float().mean().item()
    log.info("depth-edge sharpening: %.1f%% of the pixels changed (blurred steps within %d px "
             "of a layer edge)", 100 * changed, reach)
    return sharp, torch.where(near_edge, 1.0 / sharp, depth)


def build_layered_depth_image(image: Tensor, depth: Tensor, motion: MotionField,
                              settings: LDISettings | None = None,
                              inpainter: Inpainter | None = None) -> LayeredDepthImage:
    """Return the layered depth image of ``image (1, 3, H, W)`` with ``depth (1, 1, H, W)``.

    Layers are disparity intervals (:mod:`.layers`), near to far. For each layer, the hole is
    the part of its neighbourhood (``margin``) hidden by nearer layers; it is inpainted from
    the context (this layer and everything behind it, eroded), colour and depth, then depth
    is pushed behind the nearer layer and the motion is continued into the hole: the field
    on which the moving points the photo shows pass under the nearer layer (the hole's own
    points stay still, :func:`~cinemagraph.render.pointcloud.lift_layers`). Layers with no
    visible pixel are dropped.
    """
    settings = settings or LDISettings()
    inpainter = inpainter or PushPullInpainter()
    check_shape("image", image, (1, 3, None, None))
    check_shape("depth", depth, (1, 1) + tuple(image.shape[-2:]))
    h, w = image.shape[-2:]
    disparity = 1.0 / depth
    # The layers' disparity intervals come from the depth as given: the few pixels that
    # sharpening changes must not re-draw them (they moved whole layers on a synthetic scene).
    bins = disparity_bins(disparity, settings.max_layers)
    margin = max(1, round(settings.margin * max(h, w)))
    if settings.sharpen_iterations > 0:
        disparity, depth = _sharpened(image, depth, disparity, bins, margin, settings)
    labels = assign_layers(disparity, bins)
    flow = motion.flow * motion.mask
    layers = []
    for index in range(int(labels.max()) + 1):
        visible = labels == index
        if not visible.any():
            continue
        nearer = labels < index
        hole = nearer & dilate(visible, margin) if settings.inpaint else torch.zeros_like(visible)
        context = erode(labels >= index, settings.context_erosion) | visible
        color, layer_depth, layer_flow = image, depth, flow
        if hole.any():
            filled_color, filled_depth = inpainter(image, depth, context, hole)
            # Keep what was inpainted behind the nearer layer that hides it.
            filled_depth = torch.maximum(filled_depth, depth * settings.behind)
            color = torch.where(hole, filled_color, image)
            layer_depth = torch.where(hole, filled_depth, depth)
            filled_flow = push_pull_fill(flow, context.to(flow.dtype))
            layer_flow = torch.where(hole, filled_flow, flow)
        coverage = visible | hole
        layer_flow = layer_flow * coverage
        depth_field = push_pull_fill(layer_depth.log(), coverage.to(depth.dtype)).exp()
        layers.append((color, layer_depth, visible, coverage, layer_flow, depth_field,
                       context, hole))
    log.info("layered depth image: %d layer(s), inpainting: %s", len(layers),
             inpainter.description)
    parts = [torch.cat(p) for p in zip(*layers)]
    return LayeredDepthImage(*parts[:6], flow_context=parts[6], flow_holes=parts[7])
