import torch

from cinemagraph.ldi import LDISettings, assign_layers, build_layered_depth_image, disparity_bins
from cinemagraph.motion.field import MotionField

from conftest import textured


def test_two_depth_planes_make_two_layers():
    depth = torch.full((1, 1, 60, 80), 5.0)
    depth[..., 20:40, 20:50] = 1.0
    disparity = 1.0 / depth
    labels = assign_layers(disparity, disparity_bins(disparity, max_layers=4))
    assert labels.max() == 1
    assert torch.all(labels[..., 20:40, 20:50] == 0) and labels[0, 0, 0, 0] == 1


def test_layer_cap_and_ordering_on_a_continuous_ramp():
    ramp = torch.linspace(0.05, 1.0, 100).view(1, 1, 100, 1).expand(1, 1, 100, 50)
    thresholds = disparity_bins(ramp, max_layers=3)
    assert 1 <= thresholds.numel() <= 2
    assert torch.all(thresholds[:-1] > thresholds[1:])


def test_inpainted_depth_continues_the_background_and_stays_behind():
    h, w = 40, 60
    image = textured(h, w)
    depth = torch.full((1, 1, h, w), 4.0)
    depth[..., 10:30, 20:40] = 1.0  # a near box in front of a far plane
    ldi = build_layered_depth_image(image, depth, MotionField.static(h, w),
                                    LDISettings(margin=0.2))
    assert ldi.num_layers == 2
    far = 1
    hidden = ldi.coverage[far, 0] & ~ldi.visible[far, 0]
    assert hidden[15:25, 25:35].all()  # the far plane is filled behind the box
    assert torch.allclose(ldi.depth[far, 0][hidden], torch.tensor(4.0), rtol=0.05)
    near = ldi.depth[0, 0][ldi.visible[0, 0]]
    assert ldi.depth[far, 0][hidden].min() > near.max()
    assert not (ldi.coverage[0, 0] & ~ldi.visible[0, 0]).any()  # nothing in front of the nearest
