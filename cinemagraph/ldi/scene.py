"""The layered depth image value passed from the LDI stage to the point cloud."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from ..conventions import check_shape


@dataclass
class LayeredDepthImage:
    """``L`` layers of one photo, ordered near to far (see :mod:`cinemagraph.conventions`).

    ``color``: ``(L, 3, H, W)``; ``depth``: ``(L, 1, H, W)`` z-depth, defined where ``coverage``;
    ``visible``: ``(L, 1, H, W)`` bool, the pixels the photo shows of this layer;
    ``coverage``: ``(L, 1, H, W)`` bool, visible or inpainted;
    ``flow``: ``(L, 2, H, W)`` motion of each layer in pixels per frame (the photo's motion on
    visible pixels, continued into inpainted ones);
    ``depth_field``: ``(L, 1, H, W)`` the layer's depth continued over the whole image, used
    to place moving points wherever the flow takes them;
    ``border``: how many pixels the layers extend past the photo on every side (the border a
    camera path needs, :func:`cinemagraph.pipeline.build_scene`), so the photo is
    ``(H - 2 border, W - 2 border)``;
    ``flow_context`` and ``flow_holes``: ``(L, 1, H, W)`` bool, where known: the pixels whose
    motion each layer's inpainted pixels continue, and those pixels, so that another motion
    can be given to the same layers (:meth:`with_flow`) without splitting and inpainting the
    photo again: neither depends on the motion.
    """

    color: Tensor
    depth: Tensor
    visible: Tensor
    coverage: Tensor
    flow: Tensor
    depth_field: Tensor
    border: int = 0
    flow_context: Tensor | None = None
    flow_holes: Tensor | None = None

    def __post_init__(self):
        check_shape("color", self.color, (None, 3, None, None))
        layers, _, h, w = self.color.shape
        for name in ("depth", "visible", "coverage", "depth_field"):
            check_shape(name, getattr(self, name), (layers, 1, h, w))
        check_shape("flow", self.flow, (layers, 2, h, w))

    def with_flow(self, flow: Tensor) -> "LayeredDepthImage":
        """The same layers carrying the photo's motion ``flow (1, 2, H, W)`` (pixels per
        frame, zero where nothing moves), continued into each layer's inpainted pixels as the
        procedure that made them continues it (push-pull from ``flow_context``)."""
        from ..filters import push_pull_fill

        if self.flow_context is None or self.flow_holes is None:
            raise ValueError("these layers do not say where their motion comes from: build "
                             "them again with the new motion")
        check_shape("flow", flow, (1, 2) + self.size)
        layers = []
        for i in range(self.num_layers):
            holes = self.flow_holes[i:i + 1]
            layer_flow = flow
            if holes.any():
                filled = push_pull_fill(flow, self.flow_context[i:i + 1].to(flow.dtype))
                layer_flow = torch.where(holes, filled, flow)
            layers.append(layer_flow * self.coverage[i:i + 1])
        return replace(self, flow=torch.cat(layers))

    @property
    def num_layers(self) -> int:
        return self.color.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.color.shape[-2:])

    def to(self, device, non_blocking: bool = False) -> "LayeredDepthImage":
        """The same layers with every tensor on ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self) if isinstance(getattr(self, f.name), Tensor)})

    @property
    def photo_size(self) -> tuple[int, int]:
        """The photo's ``(H, W)``: the layers' size less the border."""
        h, w = self.size
        return h - 2 * self.border, w - 2 * self.border
