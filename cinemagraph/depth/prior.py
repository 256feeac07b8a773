"""A non-learned depth prior for landscape photos: a ground plane under a sky.

Used when no learned depth model is available. It is a prior, not an estimate: it assumes
the camera looks at a ground plane that recedes to a horizon, with sky above, and puts
depth edges on image edges so layers separate where the picture changes.

Steps, on a copy at most ``work_size`` pixels long:

1. Sky: smooth (low-gradient), bright-or-blue pixels connected to the top border.
2. Horizon: the median lowest sky row, kept within ``horizon_range`` of the height;
   ``default_horizon`` without sky.
3. Disparity: a ground plane below the horizon (disparity linear in the row, 1 at the
   bottom row, ``horizon_disparity`` at the horizon), a backdrop above it falling to
   ``backdrop_disparity`` at the top, and ``sky_disparity`` for sky.
4. Edge alignment: each SLIC superpixel takes the disparity at its base row (objects
   stand on what is below them), then an edge-preserving guided filter with the photo as
   the guide smooths inside regions and keeps steps on image edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..conventions import check_shape


@dataclass
class PriorSettings:
    """Constants of :class:`GroundPlanePrior`; see the module docstring for their roles."""

    work_size: int = 384
    default_horizon: float = 0.45
    horizon_range: tuple[float, float] = (0.2, 0.65)
    horizon_disparity: float = 0.12
    backdrop_disparity: float = 0.06
    sky_disparity: float = 0.02
    sky_max_gradient: float = 0.025
    sky_gap: int = 15
    superpixels: int = 400
    base_quantile: float = 0.8
    guided_eps: float = 1e-3


def _detect_sky(rgb: np.ndarray, settings: PriorSettings) -> np.ndarray:
    """Return a boolean ``(H, W)`` sky mask of the ``(H, W, 3)`` float image."""
    from scipy import ndimage
    from skimage.color import rgb2gray
    from skimage.filters import sobel, gaussian

    gray = rgb2gray(rgb)
    gradient = gaussian(sobel(gray), sigma=1.5)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    bluish = (b > r + 0.03) & (b >= g - 0.02)
    bright = (gray > 0.65) & (rgb.max(-1) - rgb.min(-1) < 0.2)
    candidate = (gradient < settings.sky_max_gradient) & (bluish | bright)
    candidate = ndimage.binary_opening(candidate, iterations=2)
    # Sky is what is reached from the top row going down through sky-like pixels, column by
    # column: ground of a similar colour below a horizon band or a structure is not sky.
    # Gaps shorter than ``sky_gap`` rows (thin cloud streaks, wires) do not stop it.
    bridged = ndimage.binary_closing(candidate, structure=np.ones((settings.sky_gap, 1)),
                                     border_value=1)
    sky = np.cumprod(bridged, axis=0).astype(bool) & candidate
    holes = ndimage.binary_fill_holes(sky) & ~sky
    small_holes = holes & ~ndimage.binary_opening(holes, iterations=3)
    return sky | small_holes


def _prior_disparity(sky: np.ndarray, settings: PriorSettings) -> tuple[np.ndarray, np.ndarray]:
    """Return the prior disparity ``(H, W)`` and its sky-free profile over rows ``(H,)``."""
    h, w = sky.shape
    rows_with_sky = sky.any(axis=0)
    if rows_with_sky.mean() > 0.2:
        lowest = np.array([np.nonzero(col)[0].max() for col in sky.T[rows_with_sky]])
        horizon = float(np.median(lowest)) / (h - 1)
    else:
        horizon = settings.default_horizon
    horizon = float(np.clip(horizon, *settings.horizon_range))
    y = np.linspace(0.0, 1.0, h)[:, None]
    ground = settings.horizon_disparity + (1.0 - settings.horizon_disparity) * (
        (y - horizon) / (1.0 - horizon))
    backdrop = settings.backdrop_disparity + (settings.horizon_disparity
                                              - settings.backdrop_disparity) * (y / horizon)
    profile = np.where(y > horizon, ground, backdrop)[:, 0]
    disparity = np.repeat(profile[:, None], w, axis=1)
    disparity[sky] = settings.sky_disparity
    return disparity, profile


def _align_to_segments(rgb: np.ndarray, disparity: np.ndarray, profile: np.ndarray,
                       sky: np.ndarray, settings: PriorSettings) -> np.ndarray:
    from skimage.segmentation import slic

    segments = slic(rgb, n_segments=settings.superpixels, compactness=10.0, start_label=0,
                    channel_axis=-1)
    segments = np.where(sky, segments.max() + 1, segments)
    out = disparity.copy()
    rows = np.broadcast_to(np.arange(disparity.shape[0])[:, None], disparity.shape)
    flat_seg, flat_rows = segments.ravel(), rows.ravel()
    order = np.argsort(flat_seg, kind="stable")
    bounds = np.searchsorted(flat_seg[order], np.arange(segments.max() + 2))
    for label in range(segments.max() + 1):
        idx = order[bounds[label]:bounds[label + 1]]
        if idx.size == 0 or sky.ravel()[idx[0]]:
            continue
        base_row = int(np.quantile(flat_rows[idx], settings.base_quantile))
        out.ravel()[idx] = profile[base_row]
    return out


class GroundPlanePrior:
    """Return z-depth ``(1, 1, H, W)`` for a photo ``(1, 3, H, W)`` from a ground-plane prior.

    Deterministic and weight-free; see the module docstring for the method.
    """

    description = "built-in ground-plane prior"

    def __init__(self, settings: PriorSettings | None = None):
        self.settings = settings or PriorSettings()

    def __call__(self, image: Tensor) -> Tensor:
        from kornia.filters import guided_blur

        check_shape("image", image, (1, 3, None, None))
        h, w = image.shape[-2:]
        scale = min(1.0, self.settings.work_size / max(h, w))
        size = (max(8, round(h * scale)), max(8, round(w * scale)))
        small = F.interpolate(image.float().cpu(), size=size, mode="bilinear", antialias=True,
                              align_corners=False)
        rgb = small[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float64)
        sky = _detect_sky(rgb, self.settings)
        disparity, profile = _prior_disparity(sky, self.settings)
        disparity = _align_to_segments(rgb, disparity, profile, sky, self.settings)
        disp = torch.from_numpy(disparity).float()[None, None]
        guide = small.mean(1, keepdim=True)
        radius = max(2, round(max(size) / 48))
        disp = guided_blur(guide, disp, 2 * radius + 1, self.settings.guided_eps)
        disp = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=False)
        disp = guided_blur(image.float().cpu().mean(1, keepdim=True), disp, 5,
                           self.settings.guided_eps)
        disp = disp.clamp_min(self.settings.sky_disparity * 0.5)
        return (1.0 / disp).to(image.device)
