"""The debug pictures: the motion field's arrows say which way the fluid goes."""

import numpy as np
import pytest
import torch

from cinemagraph.visualize import draw_arrow, flow_picture

WHITE = np.array([255, 255, 255], dtype=np.uint8)


def arrow_pixels(direction, size=128, spacing=40):
    """The white pixels ``(ys, xs)`` of the one arrow drawn for a field that moves only the
    pixel (60, 60), one of those the arrows start from, towards ``direction``, over a black
    photo."""
    flow = torch.zeros(1, 2, size, size)
    flow[0, :, 60, 60] = torch.tensor(direction)
    picture = flow_picture(torch.zeros(1, 3, size, size), flow,
                           torch.ones(1, 1, size, size, dtype=torch.bool), spacing=spacing)
    ys, xs = np.nonzero((picture == WHITE).all(-1))
    return ys, xs


@pytest.mark.parametrize("direction", [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)])
def test_the_arrowhead_is_at_the_end_the_fluid_moves_to(direction):
    ys, xs = arrow_pixels(direction)
    along = (xs - 60) * direction[0] + (ys - 60) * direction[1]  # pixels past the tail
    across = -(xs - 60) * direction[1] + (ys - 60) * direction[0]
    length = 0.8 * 40
    assert along.max() == pytest.approx(length, abs=1)
    head = across != 0  # off the shaft: the head's two strokes
    assert head.sum() >= 6
    assert along[head].min() > 0.75 * length  # all at the far end, none at the tail
    assert (across[head] > 0).any() and (across[head] < 0).any()  # one stroke on each side
    assert across[head].max() == -across[head].min()  # symmetric


def test_a_diagonal_arrow_gets_its_head_at_its_tip():
    picture = np.zeros((40, 40, 3))
    draw_arrow(picture, (5.0, 5.0), (30.0, 30.0))
    ys, xs = np.nonzero(picture[..., 0] == 1.0)
    off_shaft = xs != ys
    assert off_shaft.sum() >= 4 and (xs[off_shaft] + ys[off_shaft]).min() > 40  # near (30, 30)
    assert (xs[off_shaft] > ys[off_shaft]).any() and (xs[off_shaft] < ys[off_shaft]).any()


def test_an_arrow_past_the_picture_is_cut_at_its_edge():
    picture = np.zeros((10, 10, 3))
    draw_arrow(picture, (5.0, 5.0), (30.0, 5.0))  # head wholly outside
    assert (picture[5, 5:, 0] == 1.0).all() and picture[:5].sum() == 0 and picture[6:].sum() == 0
