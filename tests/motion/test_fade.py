"""The motion field's fade at the mask's edge: what the field looks like, and what it does to
a structured texture crossing the edge in a render."""

import math

import numpy as np
import pytest
import torch

from cinemagraph.motion import HintInterpolator, MotionHints
from cinemagraph.motion.fade import (EDGE_FADE, EDGE_FADE_MIN, edge_fade, edge_fade_width,
                                     fade_at_mask_edge)


def lower_half(h, w, edge):
    mask = torch.zeros(1, 1, h, w, dtype=torch.bool)
    mask[..., edge:, :] = True
    return mask


def test_the_speed_rises_from_the_edge_inward_and_is_zero_outside():
    mask = lower_half(40, 30, 10)
    factor = edge_fade(mask, width=4.0)[0, 0]
    assert (factor[:10] == 0).all()
    # Row 10 is half a pixel from the edge, row 13 three and a half: then full speed.
    expected = torch.tensor([0.5, 1.5, 2.5, 3.5]) / 4.0
    assert torch.allclose(factor[10:14, 15], expected)
    assert (factor[14:] == 1).all()
    assert (factor[mask[0, 0]] > 0).all()  # everything in the mask still moves


def test_the_photo_border_is_no_edge():
    mask = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    mask[..., :, :12] = True  # touches the top, bottom and left borders
    factor = edge_fade(mask, width=4.0)[0, 0]
    assert (factor[:, :8] == 1).all()  # full speed up to the borders
    assert torch.allclose(factor[0, 8:12], torch.tensor([3.5, 2.5, 1.5, 0.5]) / 4.0)
    full = torch.ones(1, 1, 20, 20, dtype=torch.bool)
    assert (edge_fade(full) == 1).all() and (edge_fade(~full) == 0).all()


def test_the_fade_is_euclidean_round_a_corner():
    mask = torch.zeros(1, 1, 30, 30, dtype=torch.bool)
    mask[..., 10:, 10:] = True
    factor = edge_fade(mask, width=8.0)[0, 0]
    # Three pixels in along both axes: 3 from either edge, so (3 - 0.5) / 8.
    assert factor[12, 12] == pytest.approx(2.5 / 8)
    assert factor[12, 25] == pytest.approx(2.5 / 8)


def test_a_region_narrower_than_two_bands_still_reaches_full_speed_in_its_middle():
    mask = torch.zeros(1, 1, 40, 60, dtype=torch.bool)
    mask[..., 5:35, 5:15] = True  # 10 pixels wide: 4.5 from its middle to its edges
    mask[..., 10:14, 30:58] = True
    factor = edge_fade(mask, width=8.0)[0, 0]
    assert torch.allclose(factor[20, 5:10], (torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5]) / 2.25).clamp(max=1))
    assert torch.allclose(factor[20, 5:15], factor[20, 5:15].flip(0))
    assert (factor[11:13, 44] == 1).all() and (factor[10, 44] > 0)


def test_the_band_scales_with_the_photo():
    assert edge_fade_width((720, 1280)) == pytest.approx(EDGE_FADE * 1280)
    assert edge_fade_width((1080, 1920)) == pytest.approx(EDGE_FADE * 1920)
    assert edge_fade_width((48, 64)) == EDGE_FADE_MIN


def test_interpolated_motion_fades_at_the_mask_edge():
    mask = lower_half(96, 128, 48)
    hints = MotionHints(torch.tensor([[64.0, 80.0]]), torch.tensor([[0.5, 0.0]]), mask)
    flow = HintInterpolator()(hints, (96, 128)).flow
    speed = flow[0, 0, :, 64]
    assert (speed[:48] == 0).all()
    assert 0 < speed[48] < 0.1 * 0.5  # was 3/5 of the speed: the blur's edge
    assert (speed[48:60].diff() >= 0).all()
    assert torch.allclose(speed[60:], torch.tensor(0.5))


def test_fade_at_mask_edge_checks_its_arguments():
    with pytest.raises(ValueError, match="mask"):
        fade_at_mask_edge(torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 9, dtype=torch.bool))


# A structured texture crossing the mask's edge, rendered through the front door.
H, W, EDGE, PERIOD, SPEED, FRAMES = 96, 128, 48, 32.0, 1.0, 12


def stripes() -> torch.Tensor:
    """Diagonal colour stripes ``(1, 3, H, W)`` of ``PERIOD`` pixels along each row."""
    y, x = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    s = 0.5 + 0.4 * torch.cos(2 * math.pi * (x + 0.5 * y) / PERIOD)
    return torch.stack([s, 0.6 * s + 0.2, 1 - s])[None]


def stripe_phases(frames) -> torch.Tensor:
    """Each row's stripes ``(T, H)`` as a complex number relative to the photo's (frame 0):
    the stripes shifted by ``d`` pixels give ``exp(-2 pi i d / PERIOD)``; two copies blended
    (ghosts) give a shorter number. Read over whole periods right of the first, which the
    motion uncovers at the photo's left border."""
    x = torch.arange(int(PERIOD), W, dtype=torch.float64)
    wave = torch.exp(-2j * math.pi * x / PERIOD)
    rows = torch.stack([(f[0, :, :, int(PERIOD):].mean(0).double().to(torch.complex128)
                         * wave).sum(1) for f in frames])
    return rows / rows[0]


def render_stripes(tmp_path, symmetric=True):
    import cinemagraph

    depth = tmp_path / "depth.npy"
    np.save(depth, np.full((H, W), 2.0, np.float32))  # one flat layer: only the motion counts
    hints = MotionHints(torch.tensor([[W / 2, 72.0]]), torch.tensor([[SPEED, 0.0]]),
                        lower_half(H, W, EDGE))
    options = cinemagraph.RenderOptions(hints=hints, depth=depth, depth_kind="depth",
                                        decoder="builtin", symmetric=symmetric)
    return list(cinemagraph.prepare(stripes(), options).render("static", frames=FRAMES))


def test_stripes_crossing_the_mask_edge_do_not_tear(tmp_path):
    # The default (symmetric) render: at mid-loop the moving half shows two copies of the
    # stripes blended, fainter; the row just inside the edge must match the still row just
    # outside it, not jump to the ghosts (0.23 before the fade: the blur's 3/5 of the speed
    # on the edge row).
    phases = stripe_phases(render_stripes(tmp_path))
    jump = (phases[:, EDGE] - phases[:, EDGE - 1]).abs().max()
    assert jump < 0.12
    assert phases[FRAMES // 2, EDGE + 12].abs() < 0.6  # the interior does move (and ghosts)
    # The forward cloud alone: the stripes' sideways shift bends across the band instead of
    # breaking at the edge (6.6 pixels between two rows after 11 frames before the fade).
    phases = stripe_phases(render_stripes(tmp_path, symmetric=False))
    shift = -torch.angle(phases) * PERIOD / (2 * math.pi)  # (T, H) pixels to the right
    assert shift[-1, EDGE + 12] == pytest.approx(SPEED * (FRAMES - 1), abs=0.5)
    assert shift[:, : EDGE].abs().max() < 0.05  # the still half stays still
    steps = shift[:, EDGE - 4: EDGE + 16].diff(dim=1).abs().max()
    assert steps < 4.5
