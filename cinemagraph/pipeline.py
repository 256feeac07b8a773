"""From a photo, its depth and its motion to an animated feature point cloud.

Stages receive typed values and return typed values; nothing here reads configuration.
The command line (:mod:`cinemagraph.cli.render`) builds the components and calls
:func:`build_scene`, then :func:`cinemagraph.render.pipeline.render_frames`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .conventions import default_intrinsics
from .depth.base import normalize_depth
from .ldi import (LDISettings, LayeredDepthImage, PushPullInpainter, SequentialSettings,
                  build_layered_depth_image, sequential_layered_depth_image)
from .ldi.inpaint import Inpainter
from .render.decode import CompositingDecoder, Decoder
from .render.features import FeatureExtractor, RGBDisparityFeatures
from .motion.field import MotionField
from .render.pointcloud import AnimatedPointCloud, lift_layers

log = logging.getLogger(__name__)


@dataclass
class Components:
    """The replaceable parts of the pipeline; the defaults are the built-in, weight-free ones."""

    inpainter: Inpainter = field(default_factory=PushPullInpainter)
    features: FeatureExtractor = field(default_factory=RGBDisparityFeatures)
    decoder: Decoder = field(default_factory=CompositingDecoder)


@dataclass
class Scene:
    """Everything the renderer needs: the layered image, its features ``(L, C, H, W)``, its
    animated cloud and intrinsics."""

    image: Tensor
    depth: Tensor
    motion: MotionField
    ldi: LayeredDepthImage
    cloud: AnimatedPointCloud
    K: Tensor
    features: Tensor | None = None


def layered_depth_image(image: Tensor, depth: Tensor, motion: MotionField, inpainter: Inpainter,
                        settings: LDISettings | SequentialSettings | None) -> LayeredDepthImage:
    """Return the layered depth image by the procedure ``settings`` name: the built-in one
    (:class:`LDISettings`, default) or the original's layer-by-layer one
    (:class:`SequentialSettings`)."""
    if isinstance(settings, SequentialSettings):
        return sequential_layered_depth_image(image, depth, motion, inpainter, settings)
    return build_layered_depth_image(image, depth, motion, settings, inpainter)


def build_scene(image: Tensor, depth: Tensor, motion: MotionField, steps: int,
                components: Components | None = None,
                ldi_settings: LDISettings | SequentialSettings | None = None,
                point_radius: float = 1.0, border: float = 0.0) -> Scene:
    """Return the :class:`Scene` of ``image (1, 3, H, W)`` with ``depth`` and ``motion``.

    ``ldi_settings`` chooses the layering procedure (:func:`layered_depth_image`).
    ``depth`` is normalised (near depth 1); ``steps`` is the number of animation steps to
    integrate (the number of frames). The photo is extended by ``border`` (a fraction of its
    long side) on every side before layering (:func:`extend_photo`), so that a camera path
    that looks past the photo's edges sees neither a hole nor a copy of the photo: a smooth
    continuation of its edge colours, which invents no structure, on its edge depths.
    :func:`cinemagraph.render.camera.border_needed` says how much a camera path needs (the
    render crops named paths so that they rarely need any,
    :func:`cinemagraph.render.camera.framed`). The layered image and cloud cover the
    extended photo; ``Scene.K`` stays the photo's.
    """
    components = components or Components()
    h, w = image.shape[-2:]
    depth = normalize_depth(depth)
    K = default_intrinsics(h, w, device=image.device)[0]
    pad = min(round(border * max(h, w)), h - 1, w - 1)
    if pad > 0:
        ldi = layered_depth_image(*extend_photo(image, depth, pad), _padded(motion, pad),
                                  components.inpainter, ldi_settings)
        ldi = replace(ldi, border=pad)
    else:
        ldi = layered_depth_image(image, depth, motion, components.inpainter, ldi_settings)
    features = components.features(ldi)
    cloud = lift_layers(ldi, features, _cloud_intrinsics(K, pad), steps, point_radius)
    log.info("point cloud: %d points, %d moving; features: %s", cloud.pixels.shape[0],
             cloud.moving.numel(), components.features.description)
    return Scene(image, depth, motion, ldi, cloud, K, features)


def animate_scene(scene: Scene, motion: MotionField, steps: int,
                  point_radius: float = 1.0) -> Scene:
    """``scene`` with another ``motion`` (or more ``steps``): the same layers and features,
    carrying the new motion (:meth:`LayeredDepthImage.with_flow`), lifted again; nothing is
    split into layers or inpainted again. Equal to :func:`build_scene` with that motion."""
    pad = scene.ldi.border
    padded = _padded(motion, pad) if pad > 0 else motion
    ldi = scene.ldi.with_flow(padded.flow * padded.mask)
    cloud = lift_layers(ldi, scene.features, _cloud_intrinsics(scene.K, pad), steps,
                        point_radius)
    return replace(scene, motion=motion, ldi=ldi, cloud=cloud)


def extend_photo(image: Tensor, depth: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """``image (1, 3, H, W)`` and ``depth (1, 1, H, W)`` extended by ``pad`` pixels on every
    side: the depth by repeating its edge, the colour by push-pull from the photo
    (:func:`~cinemagraph.filters.push_pull_fill`), a blend of the edge colours that grows
    smoother with the distance from the photo. No row or column of the photo is copied
    past its edge (a mirrored border showed a forest as a lake, a zip twice)."""
    from .filters import push_pull_fill

    known = F.pad(torch.ones_like(depth), (pad,) * 4)  # push-pull keeps these pixels as they are
    color = push_pull_fill(F.pad(image, (pad,) * 4), known)
    return color, F.pad(depth, (pad,) * 4, mode="replicate")


def _padded(motion: MotionField, pad: int) -> MotionField:
    """``motion`` extended by ``pad`` pixels on every side (repeated), as the layers are."""
    return MotionField(F.pad(motion.flow, (pad,) * 4, mode="replicate"),
                       F.pad(motion.mask.float(), (pad,) * 4, mode="replicate") > 0.5)


def _cloud_intrinsics(K: Tensor, pad: int) -> Tensor:
    """The photo's intrinsics ``K (3, 3)`` for the layers' pixels, ``pad`` past its edges."""
    cloud_K = K.clone()
    cloud_K[:2, 2] += pad
    return cloud_K
