"""The original's layer-by-layer inpainting procedure, with any inpainter."""

import kornia
import pytest
import torch

from cinemagraph.filters import dilate, erode_square, masked_median
from cinemagraph.ldi import PushPullInpainter, sequential_layered_depth_image
from cinemagraph.ldi.sequential import inpainting_bbox
from cinemagraph.motion.field import MotionField

from conftest import textured


class Adversary:
    """Puts near, random content everywhere it is asked to fill."""

    description = "adversarial test inpainter"

    def __init__(self, depth_value):
        self.depth_value = depth_value
        self.calls = []

    def __call__(self, color, depth, context, hole):
        self.calls.append((context.clone(), hole.clone()))
        g = torch.Generator().manual_seed(len(self.calls))
        return (torch.rand(color.shape, generator=g),
                torch.full_like(depth, self.depth_value))


def three_planes(h=90, w=120):
    depth = torch.full((1, 1, h, w), 8.0)
    depth[..., 10:70, 15:80] = 3.0
    depth[..., 30:50, 30:55] = 1.0
    return textured(h, w), depth


@pytest.mark.parametrize("inpainter", [Adversary(0.01), Adversary(1e4), PushPullInpainter()],
                         ids=["near", "far", "push-pull"])
def test_inpainted_content_never_comes_in_front_of_a_nearer_layer(inpainter):
    image, depth = three_planes()
    ldi = sequential_layered_depth_image(image, depth, MotionField.static(90, 120), inpainter)
    assert ldi.num_layers == 3
    for i in range(1, ldi.num_layers):
        for j in range(i):
            both = ldi.coverage[i, 0] & ldi.coverage[j, 0]
            assert (ldi.depth[i, 0][both] > ldi.depth[j, 0][both]).all(), (i, j)
        # Inpainted pixels lie behind whatever the photo shows in front of them.
        assert (ldi.depth[i, 0][ldi.coverage[i, 0]] >= depth[0, 0][ldi.coverage[i, 0]]).all()
    # The nearest layer is the photo's, not inpainted.
    assert torch.equal(ldi.coverage[0, 0], depth[0, 0] == 1.0)


def test_context_holes_and_bbox_are_the_originals():
    image, depth = three_planes()
    spy = Adversary(20.0)
    sequential_layered_depth_image(image, depth, MotionField.static(90, 120), spy)
    assert len(spy.calls) == 2
    context, holes = spy.calls[0]  # layer 1: everything at depth >= 3, eroded 10x10
    expected = kornia.morphology.erosion((depth >= 3.0).float(), torch.ones(10, 10)) > 0.5
    assert torch.equal(context, expected)
    assert not (context & holes).any()
    assert holes[..., 40, 40]  # the nearest plane's footprint is a hole of layer 1
    # The far plane covers the whole image, so its box (grown by 40) is the image less the
    # last row and column, as the original's exclusive end gives.
    context2, holes2 = spy.calls[1]
    box = inpainting_bbox(context2, 40)
    assert box[0, 0, :-1, :-1].all() and not box[0, 0, -1].any() and not box[0, 0, :, -1].any()
    assert torch.equal(holes2, ~context2 & box)


def test_a_layer_too_small_to_inpaint_from_is_skipped():
    h, w = 80, 100
    depth = torch.full((1, 1, h, w), 8.0)
    depth[..., 20:60, 20:50] = 1.0
    depth[..., 20:60, 50:53] = 3.0  # a 3-pixel-wide middle layer: nothing left after erosion
    spy = Adversary(20.0)
    ldi = sequential_layered_depth_image(textured(h, w), depth, MotionField.static(h, w), spy)
    assert len(spy.calls) == 1  # only the far plane was inpainted
    assert ldi.num_layers == 2


def test_layers_carry_motion_into_their_holes():
    image, depth = three_planes()
    flow = torch.zeros(1, 2, 90, 120)
    flow[:, 0] = 1.5
    motion = MotionField(flow, torch.ones(1, 1, 90, 120, dtype=torch.bool))
    ldi = sequential_layered_depth_image(image, depth, motion, PushPullInpainter())
    far = ldi.num_layers - 1
    covered = ldi.coverage[far, 0]
    assert torch.allclose(ldi.flow[far, 0][covered], torch.tensor(1.5))
    assert (ldi.flow[:, :, ~ldi.coverage[far, 0]][far] == 0).all()


def test_opening_equals_kornias():
    m = torch.rand(1, 1, 40, 50, generator=torch.Generator().manual_seed(0)) > 0.3
    ours = dilate(erode_square(m, 3), 1)
    theirs = kornia.morphology.opening(m.float(), torch.ones(3, 3)) > 0.5
    assert torch.equal(ours, theirs)


def test_masked_median_uses_only_masked_neighbours():
    values = torch.arange(49, dtype=torch.float32).view(1, 1, 7, 7)
    mask = torch.zeros(1, 1, 7, 7, dtype=torch.bool)
    mask[..., :3, :] = True
    where = torch.zeros_like(mask)
    where[0, 0, 2, 3] = True
    out = masked_median(values, mask, where, 3)
    # window rows 1..3, cols 2..4; masked rows 1, 2: values 9 10 11 16 17 18 -> lower median 11
    assert out[0, 0, 2, 3] == 11.0
    assert torch.equal(out.flatten()[values.flatten() != 17], values.flatten()[values.flatten() != 17])
