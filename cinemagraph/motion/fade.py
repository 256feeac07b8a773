"""The fade of a motion field to zero speed at the edge of its mask.

A field that drops from full speed to zero between two neighbouring pixels tears whatever
texture crosses the mask's edge. After ``t`` frames the rows just inside have moved ``t``
times the speed and the rows just outside not at all, so a lightning bolt or a cloud's rim
breaks in two; at mid-loop, where 3D symmetric animation blends two copies of the moving
region ``N`` times the speed apart (:mod:`cinemagraph.render.blend`), a crisp still half
meets two faint ghosts. Fading the speed over a band of ``w`` pixels turns the break into
a bend (neighbouring rows move ``1 / w`` of the displacement apart) and lets the two ghosts
meet the still half as one, pulling apart across the band. The original demo gets a
similar band from its blur of the network's output (15 pixels on its 768 grid: half the
speed at the edge, full speed some 7 grid pixels, about 1% of the photo's side, inside),
and our hint interpolation from its 5-pixel blur (3/5 of the speed on the edge row); both
still leave a jump at the edge, which the fade removes.

The band lies inside the mask: the speed rises from nearly zero on the mask's outermost
pixels to full speed ``w`` pixels in, so the mask keeps meaning what moves (every pixel of
it moves, the edge ones slowly) and the field stays zero outside it. ``w`` is a fraction
of the photo's long side, :data:`EDGE_FADE` (2%: 10 pixels at 512, 26 at 1280, 38 at
1920), so that one photo moves alike at any ``--max-size`` (hints, in pixels per frame,
scale with the photo too); never less than :data:`EDGE_FADE_MIN` pixels; and at most half
the depth of the mask's region, so that a thin waterfall still reaches full speed along
its middle. Why 2%: the ghosts part by the loop's displacement over the band (``N``
frames times the speed: 3 to 7% of the long side in 60 frames for the hints of the shared
samples, 3% for the rocket example), so a band much narrower than that forks a structure
crossing the edge within a row or two; on the rocket example at 512 pixels a tower leg 4
pixels inside the mask still ghosts at mid-loop with a 4-pixel band, and hardly with a
10-pixel one. Wider bands would slow more of the fluid near its edges.

Only the motion stage fades (:class:`~.interpolate.HintInterpolator`,
:class:`~.network.NetworkMotion`): a given field, such as the synthetic scenes' ground
truth that :mod:`cinemagraph.eval` renders, is used as it is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..conventions import check_shape

#: Width of the band over which the speed fades, as a fraction of the photo's long side
#: (module docstring).
EDGE_FADE = 0.02
#: The band is never narrower than this, in pixels.
EDGE_FADE_MIN = 4.0


def edge_fade_width(size: tuple[int, int]) -> float:
    """Return the width in pixels of the fade band for a photo of ``size = (H, W)``."""
    return max(EDGE_FADE_MIN, EDGE_FADE * max(size))


def edge_fade(mask: Tensor, width: float | None = None) -> Tensor:
    """Return the speed factor ``(1, 1, H, W)`` in ``[0, 1]`` of the bool ``mask (1, 1, H, W)``.

    0 outside the mask; inside, ``(d - 0.5) / w`` capped at 1, with ``d`` the Euclidean
    distance from the pixel's centre to the nearest centre of a pixel outside the mask (so
    ``d - 0.5`` is the distance to the mask's edge, half a pixel out). ``w`` is ``width``
    (default :func:`edge_fade_width`), but at most half the largest ``d - 0.5`` of the
    pixel's region (its 8-connected part of the mask), so that a region narrower than two
    bands (a thin waterfall) still reaches full speed along its middle. The photo's border
    is no edge (the fluid goes on past it: pixels past the border count as inside).
    """
    from scipy import ndimage

    check_shape("mask", mask, (1, 1, None, None))
    width = edge_fade_width(tuple(mask.shape[-2:])) if width is None else float(width)
    inside = mask[0, 0].bool().cpu().numpy()
    if inside.all() or not inside.any():
        return mask.to(torch.float32)
    to_edge = torch.from_numpy(ndimage.distance_transform_edt(inside).astype(np.float32)) - 0.5
    regions, count = ndimage.label(inside, structure=np.ones((3, 3)))
    regions = torch.from_numpy(regions).long()
    # The deepest pixel of each region (scipy's ndimage.maximum takes 20 times longer).
    deepest = torch.zeros(count + 1).scatter_reduce(0, regions.flatten(), to_edge.flatten(),
                                                    "amax", include_self=False)
    band = torch.clamp(0.5 * deepest[regions], max=width).clamp_min(1e-6)
    factor = (to_edge / band).clamp(0.0, 1.0) * torch.from_numpy(inside)
    return factor.to(mask.device)[None, None]


def fade_at_mask_edge(flow: Tensor, mask: Tensor, width: float | None = None) -> Tensor:
    """Return ``flow (1, 2, H, W)`` masked by ``mask (1, 1, H, W)`` (bool) and faded to zero
    speed at its edge (:func:`edge_fade`)."""
    check_shape("flow", flow, (1, 2, None, None))
    check_shape("mask", mask, (1, 1) + tuple(flow.shape[-2:]))
    return flow * edge_fade(mask, width).to(flow)
