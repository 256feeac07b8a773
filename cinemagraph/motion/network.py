"""Motion from the learned network (:mod:`cinemagraph.models.motion_net`), as the original runs it.

Around the network, done once here (3D Cinemagraphy's ``demo.py`` and
``ImgRenderer.compute_flow_and_inpaint``):

1. Inputs on the network's square grid (768x768): the photo resized bicubically (with
   antialiasing, as PIL resizes) and normalised to ``[-1, 1]``; the mask area-resized (its edge
   values become fractional); the hints made dense and scaled to the grid.
   Dense hints: each hint's motion spread by normalised Gaussian weights
   ``exp(-(d / sigma)^2)`` over the photo, masked, then multiplied by ``(768 / W, 768 / H)``
   and resized bilinearly. The original draws ``sigma`` at random in ``[H / 2n, 2H / n)`` for
   ``n`` hints; here it is ``H / n``, inside that range, so the same input always gives the
   same motion.
2. The network's output is masked, box-blurred (15x15, zero borders) and masked again. (The
   original runs its blur in a loop of 7 that re-blurs the unblurred field each time, so it
   blurs once; once it is here.)
3. The field is scaled from the square grid back to the photo, ``(W / 768, H / 768)``, resized
   bilinearly to ``(H, W)``, masked at the photo's resolution (so the field is zero outside
   the mask, as :class:`~.field.MotionField` requires), faded to zero speed at the mask's
   edge (:mod:`.fade`; the original stops at its blur, which leaves about half the speed on
   the edge pixels) and multiplied by ``flow_scale``.
   (The original *divides* by its ``--flow_scale``, though its help calls it the fluid's
   speed; ours multiplies: 2 is twice as fast.)

Without hints (``--motion auto``) the hint map is zero and the mask is the whole photo unless
one is given: the network was trained with hints dropped out and predicts motion from the
photo alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conventions import pixel_grid
from .fade import fade_at_mask_edge
from .field import MotionField
from .hints import MotionHints

#: The network's grid (the original's ``motionH = motionW = W = 768``).
GRID = 768
#: Side of the box blur applied to the network's output.
BLUR = 15


def dense_hints(hints: MotionHints, size: tuple[int, int], mask: Tensor,
                sigma: float | None = None) -> Tensor:
    """Return the hints spread over the photo ``(1, 2, H, W)``, pixels per frame, masked:
    normalised Gaussian weights ``exp(-(d / sigma)^2)`` (``sigma`` defaults to ``H / n``)."""
    h, w = size
    n = len(hints)
    if n == 0:
        return torch.zeros(1, 2, h, w, device=mask.device)
    sigma = h / n if sigma is None else sigma
    grid = pixel_grid(h, w, device=mask.device).view(2, -1).transpose(0, 1)  # (HW, 2)
    points = hints.points.to(mask.device).round()  # the original indexes whole pixels
    weights = torch.exp(-(torch.cdist(grid, points) / sigma).square())  # (HW, n)
    total = weights.sum(1, keepdim=True)
    total = torch.where(total == 0, torch.ones_like(total), total)
    dense = (weights @ hints.vectors.to(mask.device)) / total
    return dense.transpose(0, 1).reshape(1, 2, h, w) * mask


class NetworkMotion:
    """The motion stage on the learned network (module docstring).

    ``checkpoint``: the official ``sceneflow_model.pth`` or our safetensors; ``train_mode``:
    run the network as the official demo does (one spectral-norm power iteration per call,
    see :mod:`cinemagraph.models.motion_net`); default eval mode.
    """

    def __init__(self, checkpoint, device=None, flow_scale: float = 1.0, grid: int = GRID,
                 blur: int = BLUR, train_mode: bool = False):
        from ..models.zoo import create

        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model = create("motion_net", checkpoint=checkpoint).to(self.device)
        self.model.train(train_mode)
        self.flow_scale, self.grid, self.blur = flow_scale, grid, blur
        self.description = f"motion network ('{checkpoint}')"

    def inputs(self, image: Tensor, hints: MotionHints) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return the network's ``image``, ``mask`` and ``hint`` on its grid, and the photo-size
        mask (bool)."""
        h, w = image.shape[-2:]
        g = self.grid
        mask = hints.mask if hints.mask is not None else torch.ones(1, 1, h, w, dtype=torch.bool)
        mask = mask.to(self.device)
        x = F.interpolate(image.to(self.device).float(), size=(g, g), mode="bicubic",
                          align_corners=False, antialias=True).clamp(0, 1)
        x = (x - 0.5) / 0.5
        hint = dense_hints(hints, (h, w), mask.float())
        hint = hint * torch.tensor([g / w, g / h], device=self.device).view(1, 2, 1, 1)
        hint = F.interpolate(hint, size=(g, g), mode="bilinear", align_corners=False)
        grid_mask = F.interpolate(mask.float(), size=(g, g), mode="area")
        return x, grid_mask, hint, mask

    @torch.no_grad()
    def __call__(self, image: Tensor, hints: MotionHints) -> MotionField:
        from kornia.filters import box_blur

        h, w = image.shape[-2:]
        x, grid_mask, hint, mask = self.inputs(image, hints)
        flow = self.model(x, grid_mask, hint) * grid_mask
        flow = box_blur(flow, (self.blur, self.blur), border_type="constant") * grid_mask
        flow = flow * torch.tensor([w / self.grid, h / self.grid], device=self.device).view(1, 2, 1, 1)
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        flow = fade_at_mask_edge(flow, mask) * self.flow_scale
        return MotionField(flow.to(image.device), mask.to(image.device))
