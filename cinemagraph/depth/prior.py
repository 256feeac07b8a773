"""A non-learned depth prior for outdoor photos: ground, things standing on it, and sky.

Used when no learned depth model is available. It is a prior, not an estimate: it assumes
the camera looks at a ground plane that recedes to a horizon, with sky above it, and that
everything else stands on that ground. A thing that stands (a tower, a person, a tree, a
cliff) faces the camera at one depth, its ground contact's, so its verticals stay straight
when the camera moves; sky is the farthest.

Steps, on a copy at most ``work_size`` pixels long:

1. Sky: smooth (gradient under ``sky_max_gradient``), bright-or-blue pixels reached from
   the top border going down each column, while the colour stays within
   ``sky_colour_step`` (CIELAB) of the sky's just above (a ridge ends the sky, so a
   mountain is not sky; a wire or a cloud streak shorter than ``sky_gap`` rows does not).
2. Horizon: where the sky reaches lowest (the ``horizon_quantile`` of the columns' lowest
   sky rows: what stands in front of the horizon hides it elsewhere), kept within
   ``horizon_range`` of the height. Where sky shows in at most a fifth of the columns
   there is no horizon to stand things on (a close view, a forest): the prior is then the
   ground plane below ``default_horizon`` and whatever sky there is.
3. Ground plane: disparity linear in the row, 1 at the bottom row and
   ``horizon_disparity`` at and above the horizon.
4. Segments: Felzenszwalb's graph segmentation (``segment_scale``, ``segment_sigma``,
   ``segment_min_size``), each segment cut in two at the horizon. A segment that is not
   sky (at most ``sky_share`` of it sky) stands when it lies above the horizon, when it
   is at least ``tall_ratio`` as tall as it is wide, or when it lies under something
   standing: most (``stand_overlap``) of its top edge has a standing pixel at most
   ``stand_reach`` rows above, it is no wider than 1.5 times that edge, and at least
   ``stout_ratio`` as tall as it is wide (or a sliver of at most 3 rows along an edge).
   A segment that reaches the bottom row never stands for being tall, and stands under
   something only if it is narrower than half the width (the ground in front can be as
   tall as it is wide and lie under a hill; a near tower's or person's foot runs off the
   bottom). The rest is ground.
5. Contact: below each column of a standing segment, the first ground pixel that is not
   in a sliver (the bottom row if none); the segment takes the plane's disparity there,
   the ``contact_quantile`` over its columns. Sky takes ``sky_disparity``, but for panes:
   sky closed in by a standing thing within ``pane_size`` of the long side (a lattice,
   branches) takes the nearest standing pixel's disparity, so it moves with the thing
   instead of tearing it; so does what lies above the horizon and is neither sky nor in
   a standing segment.
6. Full size: the disparity is resized to the photo and aligned with its edges by a
   guided filter (5 pixels, ``guided_eps``, the photo's grey level as the guide), kept
   at least half ``sky_disparity``, and inverted to depth.
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
    horizon_range: tuple[float, float] = (0.2, 0.9)
    horizon_quantile: float = 0.9
    horizon_disparity: float = 0.12
    sky_disparity: float = 0.02
    sky_max_gradient: float = 0.025
    sky_gap: int = 15
    sky_colour_step: float = 12.0
    segment_scale: float = 150.0
    segment_sigma: float = 0.4
    segment_min_size: int = 40
    tall_ratio: float = 0.7
    sky_share: float = 0.8
    stand_overlap: float = 0.6
    stand_reach: int = 6
    stout_ratio: float = 0.3
    contact_quantile: float = 0.5
    pane_size: float = 0.01
    guided_eps: float = 1e-3


def _detect_sky(rgb: np.ndarray, lab: np.ndarray, settings: PriorSettings) -> np.ndarray:
    """Return a boolean ``(H, W)`` sky mask of the ``(H, W, 3)`` float image (``lab``: the
    same image in CIELAB)."""
    from scipy import ndimage
    from skimage.color import rgb2gray
    from skimage.filters import gaussian, sobel

    gray = rgb2gray(rgb)
    gradient = gaussian(sobel(gray), sigma=1.5)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    bluish = (b > r + 0.03) & (b >= g - 0.02)
    bright = (gray > 0.65) & (rgb.max(-1) - rgb.min(-1) < 0.2)
    candidate = (gradient < settings.sky_max_gradient) & (bluish | bright)
    candidate = ndimage.binary_opening(candidate, iterations=2)
    # Down every column at once: sky goes on through sky-like pixels near the colour of
    # the sky just above them, and across gaps shorter than ``sky_gap`` rows.
    h, w = candidate.shape
    sky = np.zeros_like(candidate)
    alive = np.ones(w, dtype=bool)
    colour = lab[0].copy()
    gap = np.zeros(w, dtype=int)
    for y in range(h):
        near = np.linalg.norm(lab[y] - colour, axis=-1) < settings.sky_colour_step
        sky[y] = alive & candidate[y] & near
        colour[sky[y]] = 0.7 * colour[sky[y]] + 0.3 * lab[y][sky[y]]
        gap = np.where(sky[y], 0, gap + 1)
        alive &= gap < settings.sky_gap
    holes = ndimage.binary_fill_holes(sky) & ~sky
    small_holes = holes & ~ndimage.binary_opening(holes, iterations=3)
    return sky | small_holes


def _horizon(sky: np.ndarray, settings: PriorSettings) -> float | None:
    """The horizon as a fraction of the height (step 2); None where too little sky shows
    to place it."""
    h = sky.shape[0]
    columns = sky.any(axis=0)
    if columns.mean() <= 0.2:
        return None
    lowest = (h - 1) - np.argmax(sky[::-1][:, columns], axis=0)
    horizon = float(np.quantile(lowest, settings.horizon_quantile)) / (h - 1)
    return float(np.clip(horizon, *settings.horizon_range))


def _segments(rgb: np.ndarray, settings: PriorSettings) -> np.ndarray:
    """Felzenszwalb's graph segmentation of the image, labels ``0..n-1``."""
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(rgb, scale=settings.segment_scale, sigma=settings.segment_sigma,
                        min_size=settings.segment_min_size)


def _standing(segments: np.ndarray, sky: np.ndarray, horizon_row: int,
              settings: PriorSettings) -> tuple[np.ndarray, np.ndarray]:
    """Return two booleans per segment label: does it stand (step 4), is it a sliver (at
    most 3 rows high)?"""
    from scipy import ndimage

    h, w = segments.shape
    n = int(segments.max()) + 1
    boxes = ndimage.find_objects(segments + 1)  # labels 0..n-1 are all present
    top = np.array([b[0].start for b in boxes])
    height = np.array([b[0].stop - b[0].start for b in boxes])
    width = np.array([b[1].stop - b[1].start for b in boxes])
    flat = segments.ravel()
    size = np.bincount(flat, minlength=n)
    skyish = np.bincount(flat, sky.ravel(), n) > settings.sky_share * size
    high = top < horizon_row  # the segments are cut at the horizon: wholly above it
    # Tall regions stand, unless they reach the bottom row: a stretch of ground in front
    # can be as tall as it is wide.
    footed = top + height == h
    narrow = width < w / 2
    tall = (height >= settings.tall_ratio * width) & ~footed
    # Slivers a few pixels high along an edge belong with what they lie under.
    sliver = height <= 3
    stout = (height >= settings.stout_ratio * width) | sliver
    standing = (high | tall) & ~skyish
    # The top edge of each segment: pixels whose upper neighbour is another segment; each
    # looks up to ``stand_reach`` rows past it (through slivers along edges).
    ys, xs = np.nonzero(segments[1:] != segments[:-1])
    ys = ys + 1
    below = segments[ys, xs]
    edge_count = np.bincount(below, minlength=n)
    reach = [(np.clip(ys - d, 0, None), d <= ys) for d in range(1, settings.stand_reach + 1)]
    while True:
        pixels = standing[segments] & ~sky
        held = np.zeros(ys.size, dtype=bool)
        for rows_up, inside in reach:
            held |= inside & pixels[rows_up, xs] & (segments[rows_up, xs] != below)
        under = np.bincount(below, held, n)
        grow = (~standing & ~skyish & stout & (width <= 1.5 * under) & (narrow | ~footed)
                & (under >= settings.stand_overlap * np.maximum(edge_count, 1)))
        if not grow.any():
            return standing, sliver
        standing |= grow


def prior_disparity(rgb: np.ndarray, settings: PriorSettings) -> np.ndarray:
    """Return the prior's disparity ``(H, W)`` (steps 1-5) of the ``(H, W, 3)`` float
    image."""
    from scipy import ndimage
    from skimage.color import rgb2lab

    h, w = rgb.shape[:2]
    lab = rgb2lab(rgb)
    sky = _detect_sky(rgb, lab, settings)
    horizon = _horizon(sky, settings)
    found = horizon is not None
    horizon = horizon if found else settings.default_horizon
    y = np.linspace(0.0, 1.0, h)
    plane = settings.horizon_disparity + (1.0 - settings.horizon_disparity) * np.clip(
        (y - horizon) / (1.0 - horizon), 0.0, 1.0)
    disparity = np.repeat(plane[:, None], w, axis=1)
    if not found:
        # No horizon (a close view, a forest): nothing to stand things on; the ground plane
        # alone, which bends nothing much and tears nothing.
        disparity[sky] = settings.sky_disparity
        return disparity
    horizon_row = round(horizon * (h - 1))
    # A segment that leaks across the horizon (a cliff into the grass below it) is judged
    # in two parts.
    below = np.arange(h)[:, None] >= horizon_row
    _, segments = np.unique(_segments(rgb, settings) * 2 + below, return_inverse=True)
    segments = segments.reshape(h, w)
    stands, sliver = _standing(segments, sky, horizon_row, settings)
    standing = stands[segments] & ~sky
    ground = ~standing & ~sky
    # Below every pixel, the first ground row of its column that is not a sliver (the
    # blurred line along an edge); the bottom row if none.
    solid = ground & ~sliver[segments]
    contact = np.empty((h, w), dtype=int)
    nearest = np.full(w, h - 1)
    for row in range(h - 1, -1, -1):
        nearest = np.where(solid[row], row, nearest)
        contact[row] = nearest
    # One contact per column of a standing segment: that of its lowest pixel there.
    ys, xs = np.nonzero(standing)
    labels = segments[ys, xs]
    key = labels * w + xs
    lowest = np.full(int(stands.size) * w, -1)
    np.maximum.at(lowest, key, ys)
    keys = np.nonzero(lowest >= 0)[0]
    key_labels, key_cols = np.divmod(keys, w)
    values = plane[contact[lowest[keys], key_cols]]
    bounds = np.searchsorted(key_labels, np.arange(stands.size + 1))
    per_label = np.zeros(stands.size)
    for label in np.nonzero(bounds[1:] > bounds[:-1])[0]:
        per_label[label] = np.quantile(values[bounds[label]:bounds[label + 1]],
                                       settings.contact_quantile)
    disparity[standing] = per_label[labels]
    # Sky seen through a thing (the panes of a lattice tower, between branches) moves with
    # it: its pixels take the nearest standing pixel's disparity.
    reach = max(2, round(max(h, w) * settings.pane_size))
    panes = sky & ndimage.binary_closing(standing, np.ones((2 * reach + 1,) * 2, bool))
    # So do the pixels above the horizon that are neither sky nor in a standing segment
    # (the edge of a spire in the sky's segment).
    panes |= ~sky & ~standing & ~below
    if standing.any():
        _, nearest_px = ndimage.distance_transform_edt(~standing, return_indices=True)
        disparity[panes] = disparity[nearest_px[0][panes], nearest_px[1][panes]]
    disparity[sky & ~panes] = settings.sky_disparity
    return disparity


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
        if not bool(torch.isfinite(image).all()):
            raise ValueError("the image has NaN or infinite values: give RGB in [0, 1]")
        h, w = image.shape[-2:]
        scale = min(1.0, self.settings.work_size / max(h, w))
        size = (max(8, round(h * scale)), max(8, round(w * scale)))
        small = F.interpolate(image.float().cpu(), size=size, mode="bilinear", antialias=True,
                              align_corners=False)
        rgb = small[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float64)
        disparity = prior_disparity(rgb, self.settings)
        disp = torch.from_numpy(disparity).float()[None, None]
        disp = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=False)
        disp = guided_blur(image.float().cpu().mean(1, keepdim=True), disp, 5,
                           self.settings.guided_eps)
        disp = disp.clamp_min(self.settings.sky_disparity * 0.5)
        return (1.0 / disp).to(image.device)
