"""The original pipeline's layer-by-layer inpainting (3D Moments' ``sequential_inpainting``,
which 3D Cinemagraphy runs with the 3D Photo inpainting networks), with any inpainter.

Layers are disparity intervals (:mod:`.layers`), near to far. The nearest layer keeps what
the photo shows of it. Each farther layer ``i`` is inpainted from everything at or behind it:

1. ``context``: the pixels of layer ``i`` and of all farther layers, eroded by a
   ``context_erosion`` square (10 px). Pixels next to a nearer layer mix the two depths'
   colours and carry misplaced depth, so they are inpainted rather than copied.
2. ``holes``: the rest, inside the context's bounding box grown by ``bbox_border`` (40 px)
   and clipped to the image: the inpainter only works where the context can inform it.
3. The inpainter fills colour and depth in the holes (the 3D Photo networks: depth as
   zero-mean log depth, then colour; :class:`~cinemagraph.ldi.learned.PhotoInpainter`).
4. Depth-ordering fixes, which hold for any inpainter:
   * inpainted depth nearer than the photo's at a pixel (which belongs to a nearer layer
     there) is put just behind it, ``behind_photo`` (x1.01) of it; otherwise the inpainted
     background would occlude the foreground;
   * depth is clamped to at least ``near_clamp`` (0.9) of the layer's near edge;
   * unless this is the farthest layer, content inpainted farther than the layer's far edge
     is dropped: it would occlude the next layer from the side;
   * wherever an earlier (nearer) layer has content, this layer's depth is kept behind it,
     ``behind_previous`` (x1.05) of that depth.
5. The layer's alpha is ``context | holes`` opened by a ``alpha_opening`` square (3x3), which
   removes one-pixel specks and threads the inpainting leaves at the context border.
6. Near-depth refinement: on the layer's border (its alpha eroded by ``refine_kernel`` = 11),
   depth is replaced by the median of the layer's depths in an 11x11 window, so border
   pixels with depth from the other side of a discontinuity (DPT blurs edges) follow their
   own layer. The original applies it to the nearest layer and to all but the farthest.
   The original's median fills a window's pixels outside the layer alternately with the
   map's minimum and maximum; here the median is taken over the layer's pixels only, which
   is what that approximates.

A farther layer whose pixels, eroded like the context, number fewer than
``min_layer_pixels`` (10) is skipped: there is nothing to inpaint it from. Pixel constants
are the original's, at the photo's resolution.

Motion: each layer carries the photo's motion on its pixels, continued into the holes from
the context (push-pull), as the built-in procedure does (:mod:`.builder`); the holes' own
points stay still (:func:`~cinemagraph.render.pointcloud.lift_layers`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from ..conventions import check_shape
from ..filters import dilate, erode_square, joint_weighted_median, masked_median, push_pull_fill
from ..motion.field import MotionField
from .inpaint import Inpainter
from .layers import assign_layers, disparity_bins
from .scene import LayeredDepthImage

log = logging.getLogger(__name__)


@dataclass
class SequentialSettings:
    """Settings of :func:`sequential_layered_depth_image`; see the module docstring for
    each constant. ``sharpen_iterations`` > 0 adds our depth-edge sharpening before layering
    (off: the original has none)."""

    max_layers: int = 4
    context_erosion: int = 10
    bbox_border: int = 40
    min_layer_pixels: int = 10
    alpha_opening: int = 3
    refine_kernel: int = 11
    behind_photo: float = 1.01
    behind_previous: float = 1.05
    near_clamp: float = 0.9
    sharpen_iterations: int = 0
    sharpen_radius: int = 3


def inpainting_bbox(context: Tensor, border: int) -> Tensor:
    """Return the 0/1 box ``(1, 1, H, W)`` bool around ``context`` grown by ``border``.

    As the original's ``define_inpainting_bbox``: rows ``[max(r0 - border, 0),
    min(r1 + border, H - 1))``, the end exclusive, likewise columns.
    """
    h, w = context.shape[-2:]
    rows = context[0, 0].any(1).nonzero()
    cols = context[0, 0].any(0).nonzero()
    box = torch.zeros_like(context, dtype=torch.bool)
    if rows.numel() == 0:
        return box
    r0, r1 = max(int(rows[0]) - border, 0), min(int(rows[-1]) + border, h - 1)
    c0, c1 = max(int(cols[0]) - border, 0), min(int(cols[-1]) + border, w - 1)
    box[..., r0:r1, c0:c1] = True
    return box


def refine_near_discontinuity(depth: Tensor, alpha: Tensor, kernel: int) -> Tensor:
    """Return ``depth`` on ``alpha`` (0 elsewhere) with the layer's border pixels replaced
    by the median of the layer's depths around them (module docstring, step 6)."""
    depth = depth * alpha
    border = alpha & ~erode_square(alpha, kernel)
    return masked_median(depth, alpha, border, kernel)


def sequential_layered_depth_image(image: Tensor, depth: Tensor, motion: MotionField,
                                   inpainter: Inpainter,
                                   settings: SequentialSettings | None = None) -> LayeredDepthImage:
    """Return the layered depth image of ``image (1, 3, H, W)`` with ``depth (1, 1, H, W)``
    built by the original's procedure (module docstring) with ``inpainter``."""
    s = settings or SequentialSettings()
    check_shape("image", image, (1, 3, None, None))
    check_shape("depth", depth, (1, 1) + tuple(image.shape[-2:]))
    disparity = 1.0 / depth
    if s.sharpen_iterations > 0:
        disparity = joint_weighted_median(disparity, image, s.sharpen_radius,
                                          iterations=s.sharpen_iterations)
        depth = 1.0 / disparity
    thresholds = disparity_bins(disparity, s.max_layers)
    labels = assign_layers(disparity, thresholds)
    count = int(labels.max()) + 1
    flow = motion.flow * motion.mask
    previous = torch.zeros_like(depth)  # depth of the most recent layer with content
    layers = []
    for i in range(count):
        own = labels == i
        if i == 0:
            alpha = own
            layer_depth = refine_near_discontinuity(depth, alpha, s.refine_kernel)
            color, before, layer_flow = image, own, flow
            context, holes = own, torch.zeros_like(own)
        else:
            if int(erode_square(own, s.context_erosion).sum()) < s.min_layer_pixels:
                log.info("layer %d skipped: fewer than %d pixels after erosion", i,
                         s.min_layer_pixels)
                continue
            context = erode_square(labels >= i, s.context_erosion)
            holes = ~context & inpainting_bbox(context, s.bbox_border)
            filled_color, filled_depth = inpainter(image, depth, context, holes)
            layer_depth = torch.where(context, depth, filled_depth)
            in_front = layer_depth < depth
            layer_depth = torch.where(in_front, depth * s.behind_photo, layer_depth)
            near_edge = 1.0 / thresholds[i - 1].item()
            layer_depth = layer_depth.clamp_min(s.near_clamp * near_edge)
            alpha = dilate(erode_square(context | holes, s.alpha_opening),
                           (s.alpha_opening - 1) // 2)
            if i < count - 1:
                near = assign_layers(1.0 / layer_depth, thresholds) <= i
                alpha = alpha & near
                layer_depth = refine_near_discontinuity(layer_depth, alpha, s.refine_kernel)
            else:
                near = torch.ones_like(alpha)
            behind = alpha & (previous > 0) & (layer_depth <= previous)
            layer_depth = torch.where(behind, previous * s.behind_previous, layer_depth)
            color = torch.where(holes, filled_color, image)
            before = context & near
            filled_flow = push_pull_fill(flow, context.to(flow.dtype))
            layer_flow = torch.where(holes, filled_flow, flow)
        previous = torch.where(alpha, layer_depth, previous)
        layer_flow = layer_flow * alpha
        depth_field = push_pull_fill(layer_depth.clamp_min(1e-6).log(),
                                     alpha.to(depth.dtype)).exp()
        layer_depth = torch.where(alpha, layer_depth, depth_field)
        layers.append((color, layer_depth, before, alpha, layer_flow, depth_field, context, holes))
    log.info("layered depth image (original procedure): %d layer(s), inpainting: %s",
             len(layers), inpainter.description)
    parts = [torch.cat(p) for p in zip(*layers)]
    return LayeredDepthImage(*parts[:6], flow_context=parts[6], flow_holes=parts[7])
