"""The built-in depth prior: things that stand take their ground contact's depth, so a tower
on a ground plane keeps its verticals straight when the camera moves; sky is farthest."""

import numpy as np
import pytest
import torch

import cinemagraph
from cinemagraph.depth import GroundPlanePrior

H, W = 192, 256
HORIZON, TOWER_TOP, TOWER_BASE = 100, 16, 156
TOWER_COLS = (116, 140)


def tower_photo() -> torch.Tensor:
    """A sky over a ground plane (horizon at row 100) and a red tower with white bands,
    standing on the ground at row 156: ``(1, 3, H, W)``."""
    rng = np.random.default_rng(3)
    y = np.linspace(0, 1, H)[:, None, None]
    image = np.broadcast_to(np.array([0.45, 0.62, 0.92]) + 0.1 * y, (H, W, 3)).copy()
    ground = np.array([0.42, 0.33, 0.22]) + 0.06 * rng.standard_normal((H, W, 1))
    image[HORIZON:] = ground[HORIZON:]
    tower = np.array([0.78, 0.2, 0.16])
    band = np.array([0.92, 0.9, 0.86])
    rows = np.arange(TOWER_TOP, TOWER_BASE)
    for row in rows:
        image[row, TOWER_COLS[0]:TOWER_COLS[1]] = band if (row // 12) % 3 == 2 else tower
    return torch.from_numpy(image.clip(0, 1)).float().permute(2, 0, 1)[None]


def tower_mask(frame: torch.Tensor) -> np.ndarray:
    """The tower's pixels, red or white (and their mixes), in a frame."""
    r, g, b = frame[0].numpy()
    red = (r > g + 0.15) & (r > b + 0.15) & (r > 0.3)
    white = (np.minimum(np.minimum(r, g), b) > 0.6) & (b < r + 0.15)
    return red | white


def test_a_standing_tower_takes_one_depth_from_its_ground_contact():
    photo = tower_photo()
    depth = GroundPlanePrior()(photo)[0, 0].numpy()
    inside = depth[TOWER_TOP + 5:TOWER_BASE - 5, TOWER_COLS[0] + 5:TOWER_COLS[1] - 5]
    assert inside.max() / inside.min() < 1.03
    contact = np.median(depth[TOWER_BASE + 3, :TOWER_COLS[0] - 10])  # the ground in front
    assert abs(np.median(inside) / contact - 1) < 0.1
    sky = depth[:HORIZON - 10, :40]
    assert sky.min() > 2 * inside.max()


def test_a_tower_keeps_its_vertical_edges_straight_under_zoom_in():
    photo = tower_photo()
    options = cinemagraph.RenderOptions(decoder="builtin", inpainting="builtin", device="cpu")
    scene = cinemagraph.prepare(photo, options)
    frames = list(scene.render("zoom-in", frames=8))
    last = tower_mask(frames[-1])
    rows = [r for r in range(H) if last[r].sum() >= 6]
    assert len(rows) > 0.5 * (TOWER_BASE - TOWER_TOP)  # the tower is there, whole
    rows = rows[4:-4]  # away from its top and its foot
    for side in (0, 1):
        # The outermost tower pixel of each row on that side, in a run of tower pixels.
        edge = np.array([np.nonzero(last[r])[0][-1 if side else 0] for r in rows], float)
        assert np.abs(edge - np.median(edge)).max() <= 1.5, (side, edge.min(), edge.max())


def meadow_photo(seed: int, hill: int) -> torch.Tensor:
    """A sky over a noisy green meadow whose edge rises into a hill ``hill`` rows high."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, H)[:, None, None]
    image = np.broadcast_to(np.array([0.45, 0.62, 0.92]) + 0.1 * y, (H, W, 3)).copy()
    rows, cols = np.mgrid[:H, :W]
    ground = rows > 90 - hill * np.exp(-(((cols - 128) / 40.0) ** 2))
    image[ground] = np.array([0.25, 0.45, 0.18]) + 0.03 * rng.standard_normal((ground.sum(), 1))
    return torch.from_numpy(image.clip(0, 1)).float().permute(2, 0, 1)[None]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("hill", [0, 15, 40])
def test_a_meadow_recedes_and_does_not_stand_as_a_wall(seed, hill):
    depth = GroundPlanePrior()(meadow_photo(seed, hill))[0, 0].numpy()
    column = depth[100:, 5]  # the meadow at the left, from near the horizon to the bottom
    assert column[0] > 2 * column[-1]


NOISE = torch.rand(1, 3, 60, 80, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("photo", [tower_photo(), NOISE], ids=["tower", "noise"])
def test_the_prior_is_deterministic_finite_and_positive(photo):
    a, b = GroundPlanePrior()(photo), GroundPlanePrior()(photo)
    assert torch.equal(a, b) and a.shape == (1, 1, *photo.shape[-2:])
    assert bool(torch.isfinite(a).all()) and bool((a > 0).all())


def test_an_image_with_nan_is_refused():
    photo = tower_photo()
    photo[0, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        GroundPlanePrior()(photo)
