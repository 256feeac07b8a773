"""The methods of the baseline comparison, each a real implementation on the project's parts.

Every method gets the same inputs, :class:`MethodInput` (the photo, its depth, the ground
truth motion field and mask, and the camera path), and returns the frames ``(N, 3, H, W)``
of the 3D cinemagraph along the path, ``N = len(path)``: frame ``t`` shows the fluid after
``t`` frames and the camera at pose ``t``. The rows of the paper's table:

``2d-anim-nvs``  2D animation, then novel view synthesis: the photo is animated in image
                 space (Euler-integrated motion, symmetric splatting of the forward and
                 backward warps, Holynski et al. 2021), then each animated frame becomes a 3D
                 photo (layers + inpainting, no motion) rendered at its camera pose.
``nvs-2d-anim``  novel view synthesis, then 2D animation: the static 3D photo is rendered
                 along the path, and each view is animated in 2D with the motion field
                 warped into that view (the field's 3D scene flow, reprojected).
``nvs-2d-anim-ma``  the same with a moving average (5 views) of the per-view motion fields.
``naive-pc``     naive point-cloud animation: pixels lifted straight to 3D (one layer, no
                 inpainting, RGB), moved by the scene flow, only forward.
``naive-pc-sym`` the same with 3D symmetric animation.
``ours``         the whole pipeline as configured (the components it used are logged).
``ours-no-sym``, ``ours-no-inpaint``, ``ours-no-features``  ablations of ours: without 3D
                 symmetric animation; without inpainting (layers cover only what the photo
                 shows); with an RGB point cloud instead of features (identical to ``ours``
                 until the learned feature network lands, since the built-in features are
                 RGB + coverage + disparity and the built-in decoder reads RGB + coverage).
``ours-no-border``, ``ours-no-sharpen``, ``ours-one-layer``  stage ablations, which
                 :mod:`cinemagraph.eval.regions` attributes a difference to (not in the
                 comparison's default table, :data:`STAGE_ABLATIONS`): ours without the border
                 past the photo; without the depth-edge sharpening before layering; with one
                 layer (no layering, so nothing is inpainted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..api import PreparedScene, RenderOptions
from ..conventions import bilinear_sample, pixel_grid, project, transform_points, unproject
from ..depth.base import median_depth
from ..filters import push_pull_fill
from ..ldi import LDISettings
from ..render.decode import CompositingDecoder
from ..motion.field import MotionField
from ..motion.integrate import integrate_displacements
from ..pipeline import Components, build_scene
from ..render.camera import CameraPath, border_needed
from ..render.pipeline import RenderSettings, splat_cloud
from ..render.splat import splat_points


@dataclass
class MethodInput:
    """``image (1, 3, H, W)``, ``depth (1, 1, H, W)`` (normalised, near depth 1),
    ``motion`` (ground truth), ``path`` (its ``K`` are the views' intrinsics), ``K (3, 3)``;
    ``weights``: the learned method's weight file (None: the one :func:`find_spacetime`
    finds)."""

    image: Tensor
    depth: Tensor
    motion: MotionField
    path: CameraPath
    K: Tensor
    weights: Path | None = None


METHODS: dict[str, Callable[[MethodInput], Tensor]] = {}
#: Methods that attribute a difference to a stage; the comparison runs them only when named.
STAGE_ABLATIONS = ("ours-no-border", "ours-no-sharpen", "ours-one-layer")
#: Display names in the table.
LABELS: dict[str, str] = {}


def register(name: str, label: str):
    def wrap(fn):
        METHODS[name] = fn
        LABELS[name] = label
        return fn

    return wrap


# --------------------------------------------------------------------------------------
# 2D animation in image space


def _splat_2d(image: Tensor, displacement: Tensor, front: Tensor) -> tuple[Tensor, Tensor]:
    """Forward-warp every pixel of ``image (1, C, H, W)`` by ``displacement (H*W, 2)``.

    Returns premultiplied colour ``(1, C, H, W)`` and coverage ``(1, 1, H, W)``. Pixels where
    ``front (H*W,)`` is true are drawn in front of the others (still pixels over fluid, so
    the fluid does not spill over the rocks around it).
    """
    _, c, h, w = image.shape
    grid = pixel_grid(h, w, device=image.device).view(2, -1).t()
    z = torch.where(front, 1.0, 1.5)
    radius = torch.ones(h * w, device=image.device)
    feats = torch.cat([image.view(c, -1).t(), torch.ones(h * w, 1, device=image.device)], 1)
    # Two surfaces, the still pixels and the fluid: each blends its own points.
    out = splat_points(grid + displacement, z, radius, feats, (h, w), 4, surface=front.long())
    return out.features[:, :c], out.features[:, c:]


class Animator2D:
    """Symmetric 2D animation of one image by an Eulerian field (Holynski et al. 2021).

    Frame ``t`` of ``N`` blends the image forward-warped by ``F_t`` (``t`` Euler steps of
    the field) and backward-warped by ``B_{N-t}`` (``N - t`` steps of the reversed field),
    weighted ``1 - t/N`` and ``t/N`` by coverage; what neither covers is filled by push-pull.
    """

    def __init__(self, image: Tensor, flow: Tensor, mask: Tensor, frames: int,
                 steps: int | None = None):
        _, _, h, w = image.shape
        self.image, self.frames, self.size = image, frames, (h, w)
        moving = ((flow.abs().sum(1, keepdim=True) > 0) & mask).view(-1)
        self.moving = moving.nonzero().squeeze(1)
        start = pixel_grid(h, w, device=image.device).view(2, -1).t()[self.moving]
        flow = flow * mask
        steps = frames if steps is None else steps
        self.forward = integrate_displacements(flow, start, steps)
        self.backward = integrate_displacements(-flow, start, steps)
        self.still = ~moving

    def _warp(self, disp: Tensor) -> tuple[Tensor, Tensor]:
        h, w = self.size
        full = torch.zeros(h * w, 2, device=disp.device)
        full[self.moving] = disp
        return _splat_2d(self.image, full, self.still)

    def frame(self, t: int) -> Tensor:
        n = self.frames
        if self.moving.numel() == 0 or t == 0:
            return self.image
        cf, af = self._warp(self.forward[t])
        cb, ab = self._warp(self.backward[n - t])
        wf, wb = 1.0 - t / n, t / n
        coverage = wf * af + wb * ab
        color = (wf * cf + wb * cb) / coverage.clamp_min(1e-6)
        return push_pull_fill(color, (coverage / 0.5).clamp(0, 1)).clamp(0, 1)


# --------------------------------------------------------------------------------------
# The rows


def _render_view(scene, pose: Tensor, K: Tensor, size, decoder=None) -> Tensor:
    frame = splat_cloud(scene.cloud, scene.cloud.positions(0), pose, K, size, RenderSettings())
    return (decoder or CompositingDecoder())(frame, None, 0.0)


def _border(inp: MethodInput) -> float:
    h, w = inp.image.shape[-2:]
    return border_needed(inp.path, inp.K.cpu(), (h, w), 1.0, median_depth(inp.depth))


@register("2d-anim-nvs", "2D animation -> novel view synthesis")
def two_d_anim_then_nvs(inp: MethodInput) -> Tensor:
    h, w = inp.image.shape[-2:]
    n = len(inp.path)
    animator = Animator2D(inp.image, inp.motion.flow, inp.motion.mask, n)
    static = MotionField.static(h, w, device=inp.image.device)
    border = _border(inp)
    frames = []
    for t in range(n):
        scene = build_scene(animator.frame(t), inp.depth, static, 1, border=border)
        frames.append(_render_view(scene, inp.path.world_to_camera[t].to(inp.image.device),
                                   inp.path.K[t].to(inp.image.device), (h, w)))
    return torch.cat(frames)


def view_motion(inp: MethodInput, pose: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Return the ground-truth motion field warped into a view: ``flow (1, 2, H, W)`` in that
    view's pixels per frame and its mask ``(1, 1, H, W)``.

    Each fluid pixel is lifted with its depth, and so is where it goes in one frame (on the
    depth there); both are projected into the view, and their difference is splatted there.
    """
    h, w = inp.image.shape[-2:]
    flow, mask = inp.motion.flow, inp.motion.mask
    idx = (mask.view(-1) & (flow.abs().sum(1).view(-1) > 0)).nonzero().squeeze(1)
    if idx.numel() == 0:
        return torch.zeros(1, 2, h, w, device=flow.device), torch.zeros(1, 1, h, w, dtype=torch.bool,
                                                                       device=flow.device)
    pix = pixel_grid(h, w, device=flow.device).view(2, -1).t()[idx]
    step = flow.view(2, -1).t()[idx]
    d0 = inp.depth.view(-1)[idx]
    d1 = bilinear_sample(inp.depth, pix + step, padding="border")[:, 0]
    p0, z0 = project(transform_points(pose, unproject(pix, d0, inp.K)), K)
    p1, _ = project(transform_points(pose, unproject(pix + step, d1, inp.K)), K)
    radius = torch.full_like(z0, 1.5)
    feats = torch.cat([p1 - p0, torch.ones_like(z0)[:, None]], 1)
    out = splat_points(p0, z0, radius, feats, (h, w), 4)
    cover = out.features[:, 2:3]
    view_mask = cover > 0.3
    view_flow = out.features[:, :2] / cover.clamp_min(1e-6) * view_mask
    return view_flow, view_mask


def _nvs_then_anim(inp: MethodInput, window: int) -> Tensor:
    h, w = inp.image.shape[-2:]
    n = len(inp.path)
    device = inp.image.device
    static = MotionField.static(h, w, device=device)
    scene = build_scene(inp.image, inp.depth, static, 1, border=_border(inp))
    poses, Ks = inp.path.world_to_camera.to(device), inp.path.K.to(device)
    fields = [view_motion(inp, poses[t], Ks[t]) for t in range(n)]
    frames = []
    for t in range(n):
        view = _render_view(scene, poses[t], Ks[t], (h, w))
        lo, hi = max(0, t - window // 2), min(n, t + window // 2 + 1)
        flow = torch.stack([fields[i][0] for i in range(lo, hi)]).mean(0)
        mask = torch.stack([fields[i][1] for i in range(lo, hi)]).any(0)
        animator = Animator2D(view, flow, mask, n, steps=max(t, n - t))
        frames.append(animator.frame(t))
    return torch.cat(frames)


@register("nvs-2d-anim", "NVS -> 2D animation")
def nvs_then_2d_anim(inp: MethodInput) -> Tensor:
    return _nvs_then_anim(inp, window=1)


@register("nvs-2d-anim-ma", "NVS -> 2D animation + MA")
def nvs_then_2d_anim_ma(inp: MethodInput) -> Tensor:
    return _nvs_then_anim(inp, window=5)


def _pipeline(inp: MethodInput, symmetric: bool = True, ldi: LDISettings | None = None,
              border: float | None = None, components: Components | None = None) -> Tensor:
    scene = PreparedScene.of(inp.image, inp.depth, inp.motion,
                             RenderOptions(symmetric=symmetric), components,
                             ldi_settings=ldi or LDISettings(),
                             border=_border(inp) if border is None else border)
    return torch.cat(list(scene.render(inp.path)))


#: The naive cloud: one layer, no edge sharpening, no inpainting, no border extension.
NAIVE = LDISettings(max_layers=1, sharpen_iterations=0)


@register("naive-pc", "Naive point cloud animation")
def naive_point_cloud(inp: MethodInput) -> Tensor:
    return _pipeline(inp, symmetric=False, ldi=NAIVE, border=0.0)


@register("naive-pc-sym", "Naive point cloud + 3D symmetric animation")
def naive_point_cloud_symmetric(inp: MethodInput) -> Tensor:
    return _pipeline(inp, symmetric=True, ldi=NAIVE, border=0.0)


@register("ours", "Ours")
def ours(inp: MethodInput) -> Tensor:
    return _pipeline(inp)


@register("ours-no-sym", "Ours w/o 3D symmetric animation")
def ours_without_symmetric(inp: MethodInput) -> Tensor:
    return _pipeline(inp, symmetric=False)


@register("ours-no-inpaint", "Ours w/o inpainting")
def ours_without_inpainting(inp: MethodInput) -> Tensor:
    return _pipeline(inp, ldi=LDISettings(inpaint=False))


@register("ours-no-border", "Ours w/o the border past the photo")
def ours_without_border(inp: MethodInput) -> Tensor:
    return _pipeline(inp, border=0.0)


@register("ours-no-sharpen", "Ours w/o depth-edge sharpening")
def ours_without_sharpening(inp: MethodInput) -> Tensor:
    return _pipeline(inp, ldi=LDISettings(sharpen_iterations=0))


@register("ours-one-layer", "Ours with one layer")
def ours_one_layer(inp: MethodInput) -> Tensor:
    return _pipeline(inp, ldi=LDISettings(max_layers=1))


class RGBFeatures:
    """RGB + coverage only (no disparity): the "without features" ablation."""

    description = "RGB point cloud (ablation)"
    channels = 4

    def __call__(self, ldi):
        return torch.cat([ldi.color, torch.ones_like(ldi.depth)], dim=1)


@register("ours-no-features", "Ours w/o features (RGB point cloud)")
def ours_without_features(inp: MethodInput) -> Tensor:
    return _pipeline(inp, components=Components(features=RGBFeatures()))


_LEARNED: dict = {}


def _learned_components(device, weights: Path | None = None) -> Components:
    """The learned feature network and decoder of ``weights``, else those found by
    :func:`find_spacetime` (official checkpoint, else ours), loaded once per device."""
    from ..errors import UserError
    from ..spacetime import find_spacetime, learned_components

    path = weights or find_spacetime()
    if path is None:
        raise UserError("ours-learned needs the feature network and decoder: model_STEP.pth or "
                        "cinemagraph_spacetime.safetensors in $CINEMAGRAPH_WEIGHTS or pretrained/")
    # One key per device whatever its spelling: the comparison names "cuda", a frame's
    # tensors "cuda:0".
    key = (str(path), str(torch.empty(0, device=device).device))
    if key not in _LEARNED:
        _LEARNED.clear()  # one set at a time: a checkpoint selection goes through many
        _LEARNED[key] = learned_components(path, device)
    features, decoder = _LEARNED[key]
    return Components(features=features, decoder=decoder)


@register("ours-learned", "Ours with the learned feature network + decoder")
def ours_learned(inp: MethodInput) -> Tensor:
    return _pipeline(inp, components=_learned_components(inp.image.device, inp.weights))
