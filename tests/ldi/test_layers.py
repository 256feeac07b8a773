import torch

from cinemagraph.ldi import LDISettings, assign_layers, build_layered_depth_image, disparity_bins
from cinemagraph.motion.field import MotionField
from cinemagraph.ldi.builder import layer_edges, sharpen_radius

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


NOISE = 0.8


def test_a_given_depth_is_changed_only_near_the_layer_edges():
    """Depth-edge sharpening moves blurred steps onto colour edges, and only there: away
    from the edges between layers the layers keep the depth given, bit for bit."""
    from cinemagraph.filters import dilate
    from cinemagraph.ldi.builder import layer_edges

    h, w = 48, 64
    image = textured(h, w, seed=4)
    image[..., 12:36, 20:44] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    # A smooth ramp behind a square whose depth step is blurred and 2 px off its colour edge.
    depth = torch.linspace(4.0, 3.0, h).view(1, 1, h, 1).expand(1, 1, h, w).clone()
    depth = depth + NOISE * torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(1))
    depth[..., 14:38, 22:46] = 1.0
    depth = torch.nn.functional.avg_pool2d(depth, 3, 1, 1, count_include_pad=False)
    settings = LDISettings()
    ldi = build_layered_depth_image(image, depth, MotionField.static(h, w), settings)
    shown = torch.zeros_like(depth)
    for i in range(ldi.num_layers):
        shown = torch.where(ldi.visible[i:i + 1], ldi.depth[i:i + 1], shown)
    labels = assign_layers(1 / depth, disparity_bins(1 / depth, settings.max_layers))
    near = dilate(layer_edges(labels), sharpen_radius(settings, (h, w)) * settings.sharpen_iterations)
    assert torch.equal(shown[~near], depth[~near])
    assert (shown[near] != depth[near]).any()  # the step was moved


def test_a_crisp_depth_with_thin_things_is_kept_whole():
    """Sharpening changes blurred steps only: a depth whose steps are crisp, a 2-pixel pole
    and a corner included, comes out of layering unchanged (a median would erode the pole)."""
    h, w = 48, 64
    image = textured(h, w, seed=2)
    depth = torch.full((1, 1, h, w), 4.0)
    depth[..., 10:40, 30:32] = 1.5  # a pole
    depth[..., 30:, :20] = 1.0  # a box in the corner
    image[..., 10:40, 30:32] = 0.05
    ldi = build_layered_depth_image(image, depth, MotionField.static(h, w), LDISettings())
    shown = torch.zeros_like(depth)
    for i in range(ldi.num_layers):
        shown = torch.where(ldi.visible[i:i + 1], ldi.depth[i:i + 1], shown)
    assert torch.equal(shown, depth)


def test_a_steep_ground_plane_keeps_its_depth_near_the_edges_between_its_layers():
    """A crisp ground plane that recedes from the bottom row spans more than a pixel's opening
    over a sharpening window in its near rows, and is cut into several layers: it is a slope,
    not a step, and keeps the depth given (the colour-guided median once speckled a textured
    ground with its colours). Only pixels beside the box's step may change."""
    from cinemagraph.filters import dilate

    h, w = 96, 128
    image = textured(h, w, seed=7)
    image = image + 0.3 * torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))
    rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    disparity = (0.05 + 0.95 * ((rows - 30) / (h - 31)).clamp(0, 1) ** 1.5).expand(1, 1, h, w)
    depth = (1 / disparity).clone()
    depth[..., 40:60, 50:80] = 2.0  # a box standing on the plane, its step crisp
    settings = LDISettings()
    labels = assign_layers(1 / depth, disparity_bins(1 / depth, settings.max_layers))
    assert labels[..., 60:, :50].unique().numel() >= 3  # the ground is cut into layers
    ldi = build_layered_depth_image(image, depth, MotionField.static(h, w), settings)
    shown = torch.zeros_like(depth)
    for i in range(ldi.num_layers):
        shown = torch.where(ldi.visible[i:i + 1], ldi.depth[i:i + 1], shown)
    box = torch.zeros_like(depth, dtype=torch.bool)
    box[..., 40:60, 50:80] = True
    near_box = dilate(box, sharpen_radius(settings, (h, w))) & ~box
    changed = (shown != depth) & ~near_box
    assert not changed.any(), f"{int(changed.sum())} ground pixels changed"


def test_a_wide_soft_step_of_a_resized_depth_leaves_no_pixel_between_its_sides():
    """A depth map resized to a large photo has steps whose ramp is many pixels wide (the
    astronaut's depth file, 640 px, has 9-px ramps; at 1280 px, 18). Sharpening takes every
    pixel of such a ramp to one side, the one its colour is on, so no sliver of in-between
    depth is left to float when the camera moves."""
    h, w = 64, 960  # a strip of a large photo: sharpening's radius grows to 6 px
    image = textured(h, w, seed=5)
    image[..., :, :480] = torch.tensor([0.9, 0.9, 0.85]).view(1, 3, 1, 1)  # a white suit
    x = torch.arange(w, dtype=torch.float32)
    # Disparity 1.0 on the suit, 0.2 on the ground, the step a 12-px ramp 3 px off the edge.
    disparity = 0.2 + 0.8 * (1 - ((x - 477) / 12).clamp(0, 1))
    depth = (1 / disparity).view(1, 1, 1, w).expand(1, 1, h, w).clone()
    ldi = build_layered_depth_image(image, depth, MotionField.static(h, w), LDISettings())
    shown = torch.zeros_like(depth)
    for i in range(ldi.num_layers):
        shown = torch.where(ldi.visible[i:i + 1], ldi.depth[i:i + 1], shown)
    # A tenth of the step from either side counts as that side (builder.BLURRED).
    between = (1 / shown > 0.28) & (1 / shown < 0.92)
    assert not between.any(), f"{int(between.sum())} pixels left between the sides"
    assert torch.allclose(1 / shown[..., :470], torch.tensor(1.0))  # the suit is near
    assert torch.allclose(1 / shown[..., 490:], torch.tensor(0.2))  # the ground is far
    assert ldi.num_layers == 2


def test_what_was_inpainted_stays_still_and_does_not_smear_the_fluid_it_hides():
    """A striped river flows down from under a near box. The box hides part of the river's
    layer, which is inpainted (a smooth push-pull blend of the stripes); it stays still. At
    mid-loop the river just below the box shows its stripes (the backward cloud's, where the
    forward one has moved on), not the inpainted blend carried out from under the box."""
    from cinemagraph.api import PreparedScene, RenderOptions

    h, w = 48, 64
    rows = torch.arange(h).view(1, 1, h, 1).expand(1, 3, h, w)
    image = torch.where((rows // 3) % 2 == 0, 0.9, 0.1).float()
    image[..., 8:20, 16:48] = 0.5  # the box
    depth = torch.full((1, 1, h, w), 3.0)
    depth[..., 8:20, 16:48] = 1.0
    mask = torch.ones(1, 1, h, w, dtype=torch.bool)
    mask[..., 8:20, 16:48] = False
    flow = torch.zeros(1, 2, h, w)
    flow[:, 1] = 0.5  # half a pixel a frame, down
    motion = MotionField(flow * mask, mask)
    prepared = PreparedScene.of(image, depth, motion, RenderOptions(reframe=False),
                                ldi_settings=LDISettings(margin=0.2, sharpen_iterations=0))
    scene = prepared.scene(prepared.camera_path("static", 16))
    ldi, cloud = scene.ldi, scene.cloud
    hidden = (ldi.coverage & ~ldi.visible)[:, 0].flatten()[ldi.coverage[:, 0].flatten()]
    assert hidden.any() and not hidden[cloud.moving].any()  # no inpainted point moves
    assert cloud.moving.numel() == int((ldi.visible[:, 0] & (ldi.flow.abs().sum(1) > 0)).sum())
    frames = torch.cat(list(prepared.render("static", 16)))
    below = frames[8, 0, 20:24, 20:44]  # rows the forward cloud's river has left by frame 8
    contrast = below.amax(0) - below.amin(0)
    assert contrast.min() > 0.6, contrast.min().item()
