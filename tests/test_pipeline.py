"""End-to-end properties of the scene and renderer on small synthetic scenes (CPU)."""

import torch

from cinemagraph.conventions import bilinear_sample, pixel_grid
from cinemagraph.render.decode import CompositingDecoder
from cinemagraph.motion import HintInterpolator, MotionHints
from cinemagraph.motion.field import MotionField
from cinemagraph.ldi import LDISettings
from cinemagraph.pipeline import build_scene
from cinemagraph.render.camera import CameraPath, named_path
from cinemagraph.render.pipeline import RenderSettings, render_frames

from conftest import textured

H, W = 48, 64


def two_planes():
    """A near square (depth 1) over a far plane (depth 4), both textured."""
    image = textured(H, W, seed=1)
    depth = torch.full((1, 1, H, W), 4.0)
    depth[..., 12:36, 16:40] = 1.0
    return image, depth


def render(scene, path, settings=None):
    return list(render_frames(scene.cloud, path, (H, W), CompositingDecoder(), settings))


def psnr(a, b, mask):
    mse = ((a - b) ** 2).mean(1, keepdim=True)[mask].mean()
    return (10 * torch.log10(1.0 / mse)).item()


def test_static_scene_from_the_source_camera_reproduces_the_photo():
    image, depth = two_planes()
    scene = build_scene(image, depth, MotionField.static(H, W), steps=3)
    frames = render(scene, named_path("static", 3, scene.K))
    covered = torch.ones(1, 1, H, W, dtype=torch.bool)
    for frame in frames:
        assert psnr(frame, image, covered) > 35.0


def test_extended_borders_keep_the_source_view_and_fill_what_lies_past_the_edges():
    image, depth = two_planes()
    plain = build_scene(image, depth, MotionField.static(H, W), steps=2)
    wide = build_scene(image, depth, MotionField.static(H, W), steps=2, border=0.1)
    assert wide.cloud.pixels.shape[0] > plain.cloud.pixels.shape[0]
    for frame in render(wide, named_path("static", 2, wide.K)):
        assert psnr(frame, image, torch.ones(1, 1, H, W, dtype=torch.bool)) > 35.0
    # Turned 6 px to the left: the left strip lies past the photo's edge. With the border
    # the splats cover it; without, only hole filling does.
    f = wide.K[0, 0].item()
    pose = torch.eye(4)
    pose[0, 3] = 6.0 * 4.0 / f  # the far plane (depth 4) moves 6 px right
    path = CameraPath("test", pose[None], wide.K[None], closed=False)
    from cinemagraph.render.pipeline import splat_cloud

    for scene, covered in ((wide, True), (plain, False)):
        out = splat_cloud(scene.cloud, scene.cloud.positions(0), path.world_to_camera[0],
                          path.K[0], (H, W), RenderSettings())
        assert bool((out.alpha[..., :, :5] > 0.5).all()) == covered


def test_sideways_move_shifts_the_near_layer_more_than_the_far_one_as_predicted():
    image, depth = two_planes()
    scene = build_scene(image, depth, MotionField.static(H, W), steps=1)
    f = scene.K[0, 0].item()
    tx = 0.05  # camera moves right by tx: a point at depth z moves left by f * tx / z
    pose = torch.eye(4)
    pose[0, 3] = -tx
    path = CameraPath("test", pose[None], scene.K[None], closed=False)
    frame = render(scene, path)[0]
    near_depth, far_depth = scene.depth[0, 0, 24, 28].item(), scene.depth[0, 0, 2, 2].item()

    def shift(region):
        """The x shift s minimising |frame(x) - image(x - s)| over the region (0.05 px steps)."""
        ys, xs = region
        best, best_err = None, float("inf")
        for s in torch.arange(-6.0, 6.0, 0.05).tolist():
            grid = pixel_grid(H, W)[0].view(2, -1).t() - torch.tensor([s, 0.0])
            moved = bilinear_sample(image, grid, padding="border").t().view(1, 3, H, W)
            err = (moved - frame)[..., ys, xs].abs().mean().item()
            if err < best_err:
                best, best_err = s, err
        return best

    near = shift((slice(16, 32), slice(22, 36)))
    far = shift((slice(38, 48), slice(4, 60)))
    assert abs(near - (-f * tx / near_depth)) < 0.3  # splatting blurs by a fraction of a pixel
    assert abs(far - (-f * tx / far_depth)) < 0.3
    assert abs(near) > 2 * abs(far)


def test_hints_move_the_masked_region_and_leave_the_rest_still():
    image = textured(H, W, seed=2)
    depth = torch.full((1, 1, H, W), 2.0)
    mask = torch.zeros(1, 1, H, W, dtype=torch.bool)
    mask[..., :, 32:] = True
    hints = MotionHints(torch.tensor([[48.0, 24.0]]), torch.tensor([[0.5, 0.0]]), mask)
    motion = HintInterpolator(blur=1)(hints, (H, W))
    scene = build_scene(image, depth, motion, steps=8)
    frames = render(scene, named_path("static", 8, scene.K))
    diff = (frames[4] - frames[0]).abs().mean(1)[0]
    assert diff[:, :28].max() < 1e-4  # still region, away from the mask border
    assert diff[:, 36:].mean() > 0.01  # the fluid moved
    # The symmetric animation ends where it starts: frame N would be frame 0.
    assert (frames[-1] - frames[0]).abs().mean() < (frames[4] - frames[0]).abs().mean()


def test_same_inputs_give_the_same_frames():
    image, depth = two_planes()
    hints = MotionHints(torch.tensor([[10.0, 10.0]]), torch.tensor([[0.3, 0.2]]), None)
    outs = []
    for _ in range(2):
        scene = build_scene(image, depth, HintInterpolator()(hints, (H, W)), steps=4)
        outs.append(render(scene, named_path("circle", 4, scene.K)))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_without_symmetric_animation_only_the_forward_cloud_is_drawn():
    image = textured(H, W, seed=3)
    depth = torch.full((1, 1, H, W), 2.0)
    hints = MotionHints(torch.tensor([[30.0, 20.0]]), torch.tensor([[1.0, 0.0]]), None)
    scene = build_scene(image, depth, HintInterpolator()(hints, (H, W)), steps=6)
    path = named_path("static", 6, scene.K)
    sym = render(scene, path)
    naive = render(scene, path, RenderSettings(symmetric=False))
    assert torch.equal(sym[0], naive[0])
    assert not torch.equal(sym[3], naive[3])


def test_what_a_path_shows_past_the_photo_copies_nothing_of_it():
    """Past the photo's edges the layers hold a smooth fill of the edge colours: a circle
    path rendered as given shows no mirrored rows or columns there; cropped (the default),
    it shows nothing past the edges at all."""
    from cinemagraph.api import PreparedScene, RenderOptions
    from cinemagraph.eval.regions import region_masks

    h, w = 48, 64
    g = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, h, w, generator=g)  # fine, asymmetric texture everywhere
    depth = torch.linspace(5.0, 1.0, h).view(1, 1, h, 1).expand(1, 1, h, w).clone()
    as_given = PreparedScene.of(image, depth, MotionField.static(h, w),
                                RenderOptions(reframe=False))
    path = as_given.camera_path("circle", 8)
    scene = as_given.scene(path)
    outside = region_masks(scene, path, (h, w))[:, 0]
    assert outside.sum() > 100  # the path looks past the bottom edge
    frames = torch.cat(list(as_given.render(path)))
    # Texture (horizontal detail) past the edges against that of the photo: a mirrored
    # border carries the photo's own.
    detail = (frames[..., :, 1:] - frames[..., :, :-1]).abs().mean(1)
    photo_detail = (image[..., :, 1:] - image[..., :, :-1]).abs().mean().item()
    past = outside[..., :, 1:] & outside[..., :, :-1]
    assert detail[past].mean().item() < 0.25 * photo_detail
    # No row of the layers' border is a row of the photo (mirrored or not).
    b = scene.ldi.border
    border_rows = scene.ldi.color[0, :, h + b:, b:b + w].permute(1, 0, 2).flatten(1)
    photo_rows = image[0].permute(1, 0, 2).flatten(1)
    distance = torch.cdist(border_rows, photo_rows) / (3 * w) ** 0.5
    assert distance.min().item() > 0.1
    # The default crops the path so that it shows only the photo.
    cropped = PreparedScene.of(image, depth, MotionField.static(h, w))
    path = cropped.camera_path("circle", 8)
    assert region_masks(cropped.scene(path), path, (h, w))[:, 0].sum() == 0


def test_inpainted_background_does_not_show_through_moving_foam_when_the_camera_zooms_in():
    # The waterfall sample at full size, scaled down: white foam (near, moving) below dark
    # rock (far). The rock's layer is inpainted behind the foam down to a straight edge, the
    # margin below the depth step. At the last frame of a zoom-in the foam's points are
    # enlarged 1.18x and off the pixel grid; the foam must stay white: no band of regular
    # dots over the inpainted rock and no seam where it ends.
    image = torch.full((1, 3, H, W), 0.15)
    image[..., 20:, :] = 1.0
    depth = torch.full((1, 1, H, W), 2.0)
    depth[..., 20:, :] = 1.0
    mask = torch.zeros(1, 1, H, W, dtype=torch.bool)
    mask[..., 20:, :] = True
    hints = MotionHints(torch.tensor([[32.0, 34.0]]), torch.tensor([[0.35, 0.2]]), mask)
    scene = build_scene(image, depth, HintInterpolator(blur=1)(hints, (H, W)), steps=12,
                        ldi_settings=LDISettings(margin=0.2))
    hidden = scene.ldi.flow_holes[1, 0].any(1).nonzero()[:, 0]
    assert hidden.min() == 20 and 28 < hidden.max() < 40  # the rock, inpainted to row 32
    last = render(scene, named_path("zoom-in", 12, scene.K))[-1]
    # The foam as the zoomed camera sees it, past the depth step and the band where the
    # motion fades in (cinemagraph.motion.fade: there its points spread apart), away from
    # the sides.
    foam = last[0, :, 28:46, 6:58]
    assert foam.min() > 0.99, foam.min().item()
