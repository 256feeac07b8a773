"""The learned inpainter: 3D Photo Inpainting's depth and colour networks, as the original
pipeline calls them (3D Moments' ``Inpainter.inpaint_depth`` and ``inpaint_rgb``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..models.zoo import create, find_weights

#: Registered names of the two networks.
NETWORKS = ("inpaint_depth_net", "inpaint_color_net")


def find_inpainting_weights(weights_dir: str | Path | None = None) -> dict[str, Path | None]:
    """Return the official file found for each of :data:`NETWORKS` (None where missing)."""
    return {name: find_weights(name, weights_dir) for name in NETWORKS}


class PhotoInpainter:
    """Fills a layer's holes with the 3D Photo networks (the :class:`~.inpaint.Inpainter`
    interface).

    Depth: the network sees log depth on the context with the context's mean removed
    (log depth is scale-free, so one network serves near and far layers) and predicts it in
    the holes; the result is exponentiated, the context copied back, then blurred with a
    3x3 Gaussian (sigma 1.5, reflected borders; it smooths the network's blocky output) and
    the context copied back again. Colour: the network sees the context's colours and
    predicts the holes (sigmoid output in [0, 1]). The ``edge`` input of 3D Photo
    Inpainting's own pipeline is all zeros here, as in the original. Inputs are padded to a
    multiple of 128 inside the networks (:meth:`~cinemagraph.models.inpaint_nets.
    _PartialUNet.forward_3p`).
    """

    def __init__(self, depth_checkpoint, color_checkpoint, device=None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.depth_net = create("inpaint_depth_net", checkpoint=depth_checkpoint).to(self.device)
        self.color_net = create("inpaint_color_net", checkpoint=color_checkpoint).to(self.device)
        self.description = (f"3D Photo inpainting networks ('{depth_checkpoint}', "
                            f"'{color_checkpoint}')")

    @torch.no_grad()
    def __call__(self, color: Tensor, depth: Tensor, context: Tensor,
                 hole: Tensor) -> tuple[Tensor, Tensor]:
        from kornia.filters import gaussian_blur2d

        out_device = color.device
        color, depth = color.to(self.device), depth.to(self.device)
        known = context.to(self.device)
        ctx = known.to(color.dtype)
        holes = hole.to(self.device, color.dtype)
        edge = torch.zeros_like(ctx)
        log_depth = torch.log(depth + 1e-8) * ctx
        mean = log_depth[known].mean() if bool(known.any()) else log_depth.new_zeros(())
        zero_mean = (log_depth - mean) * ctx
        filled_depth = torch.exp(self.depth_net.forward_3p(holes, ctx, zero_mean, edge) + mean)
        filled_depth = torch.where(known, depth, filled_depth)
        filled_depth = gaussian_blur2d(filled_depth, (3, 3), (1.5, 1.5))
        filled_depth = torch.where(known, depth, filled_depth)
        filled_color = self.color_net.forward_3p(holes, ctx, color * ctx, edge)
        return filled_color.to(out_device), filled_depth.to(out_device)
