"""Pictures of intermediate results: depth, motion field, layers (for ``--save-debug``)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from .ldi.scene import LayeredDepthImage


def depth_picture(depth: Tensor) -> np.ndarray:
    """Return an ``(H, W, 3)`` uint8 picture of ``depth (1, 1, H, W)``: near bright, far dark."""
    disparity = (1.0 / depth[0, 0]).cpu().numpy()
    lo, hi = np.percentile(disparity, [1, 99])
    v = np.clip((disparity - lo) / max(hi - lo, 1e-12), 0, 1)
    # A dark-blue to yellow ramp reads better than grey for depth.
    color = np.stack([v ** 0.8, v ** 1.2 * 0.9 + 0.1 * v, 0.5 * (1 - v) + 0.2 * v], -1)
    return (color * 255 + 0.5).astype(np.uint8)


def flow_picture(image: Tensor, flow: Tensor, mask: Tensor, spacing: int = 32) -> np.ndarray:
    """Return the motion field ``flow (1, 2, H, W)`` colour-coded over the dimmed photo, with
    arrows every ``spacing`` pixels (hue: direction, saturation: speed).

    Each arrow starts at a red dot, the pixel it describes, and points the way the fluid
    moves there, its white head at the far end; its length is proportional to the speed
    (``0.8 * spacing`` at the field's 99th-percentile speed)."""
    from skimage.color import hsv2rgb

    fx, fy = flow[0, 0].cpu().numpy(), flow[0, 1].cpu().numpy()
    speed = np.hypot(fx, fy)
    top = max(np.percentile(speed[speed > 0], 99) if (speed > 0).any() else 1.0, 1e-6)
    hsv = np.stack([(np.arctan2(fy, fx) / (2 * np.pi)) % 1.0, np.clip(speed / top, 0, 1),
                    np.ones_like(speed)], -1)
    base = image[0].permute(1, 2, 0).cpu().numpy() * 0.5
    moving = mask[0, 0].cpu().numpy()[..., None]
    out = np.where(moving, hsv2rgb(hsv) * 0.8 + base * 0.4, base)
    h, w = speed.shape
    scale = spacing * 0.8 / top
    for y in range(spacing // 2, h, spacing):
        for x in range(spacing // 2, w, spacing):
            if speed[y, x] > 0:
                draw_arrow(out, (x, y), (x + fx[y, x] * scale, y + fy[y, x] * scale))
                out[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = (1.0, 0.2, 0.2)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


#: An arrowhead's two strokes leave the tip at this angle to the shaft (degrees)...
ARROWHEAD_ANGLE = 30.0
#: ... and are this fraction of the arrow's length, within ``ARROWHEAD_PX`` pixels.
ARROWHEAD_SHARE = 0.35
ARROWHEAD_PX = (3.0, 8.0)


def draw_arrow(picture: np.ndarray, start: tuple[float, float], end: tuple[float, float],
               color=(1.0, 1.0, 1.0)) -> None:
    """Draw an arrow from ``start = (x, y)`` to ``end`` into ``picture (H, W, 3)`` (in place):
    the shaft and, at ``end``, a head of two strokes swept back from the tip. Whatever falls
    outside the picture is left out."""
    from skimage.draw import line

    h, w = picture.shape[:2]
    (x0, y0), (x1, y1) = start, end
    length = float(np.hypot(x1 - x0, y1 - y0))
    strokes = [(x0, y0, x1, y1)]
    if length > 0:
        head = float(np.clip(ARROWHEAD_SHARE * length, *ARROWHEAD_PX))
        back = np.arctan2(y0 - y1, x0 - x1)  # from the tip towards the start
        for turn in (-1.0, 1.0):
            a = back + turn * np.deg2rad(ARROWHEAD_ANGLE)
            strokes.append((x1, y1, x1 + head * np.cos(a), y1 + head * np.sin(a)))
    for xa, ya, xb, yb in strokes:
        rr, cc = line(int(round(ya)), int(round(xa)), int(round(yb)), int(round(xb)))
        keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        picture[rr[keep], cc[keep]] = color


def layer_pictures(ldi: LayeredDepthImage) -> list[np.ndarray]:
    """Return one picture per layer, before and after inpainting side by side: on the left
    the pixels the photo gives the layer, on the right the layer as the point cloud gets it
    (photo and inpainted pixels); uncovered pixels checkered."""
    pictures = []
    h, w = ldi.size
    ys, xs = np.mgrid[0:h, 0:w]
    checker = (((ys // 16) + (xs // 16)) % 2 * 0.2 + 0.4)[..., None].repeat(3, -1)
    gap = np.ones((h, max(2, w // 100), 3))
    for i in range(ldi.num_layers):
        color = ldi.color[i].permute(1, 2, 0).cpu().numpy()
        visible = ldi.visible[i, 0].cpu().numpy()[..., None]
        covered = ldi.coverage[i, 0].cpu().numpy()[..., None]
        before = np.where(visible, color, checker)
        after = np.where(covered, color, checker)
        out = np.concatenate([before, gap, after], axis=1)
        pictures.append((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))
    return pictures
