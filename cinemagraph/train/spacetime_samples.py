"""Training samples of the feature network and decoder, made whole in the data-loading workers.

Everything in a sample that does not depend on the networks is made on the workers' CPUs:
the scene and its ground truth, the layered depth image(s), the animated point cloud and
the geometry of every splat (:class:`~cinemagraph.render.splat.SplatPlan`: which points
cover each pixel and with what weight; splatting is linear in the features). The training
process only runs the feature network on the layers, splats its features by the plans and
decodes, on the GPU; the loss reaches both networks exactly as through the render, since
the point positions carry no gradient there either.

An item is one scene and ``per_scene`` samples of it, all of one kind and camera path at
different frames ``t`` (the scene, its layers and cloud are made once for all of them):

* ``anim``: the animation from the source camera (identity pose), frame ``t`` in
  ``1 .. N - 1``: the forward cloud after ``t`` steps and the backward cloud after ``N - t``
  steps of the reversed flow, blended at ``t / N``. With ``two_frame`` (the original's
  samples) the backward cloud is lifted from the end photo, the source view at frame ``N``,
  with its own layers; otherwise both come from the photo, as at render time.
* ``nvs``: the static scene from the camera of a path at its frame ``t``.
* ``both``: the animation seen from the camera of a path at its frame ``t`` (what the
  comparison scores; not in the original's training).

The photo is extended past its edges as far as the path needs
(:func:`~cinemagraph.render.camera.border_needed`), as the render and the comparison do.
Choices (kind, path, frames, colours) follow ``(seed, epoch, index)``: the same on every run.

Colour augmentation (``color_augment``, the share of items it applies to): the photo, the end
photo and the targets of an item go through one random linear colour transform
(:func:`color_transform`), so the networks cannot learn that, say, what needs filling is
blue. The scenes' surfaces are lit by nothing and their pixels average texture colours, so
transforming the frames is the same as transforming every texture of the scene (up to the
clamp to ``[0, 1]``).

Depth softening (``depth_blur``, the share of items it applies to): the photo's depth (and the
end photo's, which shares it) has its disparity blurred (:func:`soften_depth`, a Gaussian of
``depth_blur_sigma`` pixels, uniform in the range), as a monocular estimate's edges are soft
where the synthetic ground truth is exact; the targets stay exact. So the networks learn the
artefacts that soft depth edges leave (points stretched across an edge, a layer cut through
an object), which is what they meet in real photos.

Floaters (``floaters``, the share of synthetic scenes they go into, chosen by scene): 2-4
small boxes hovering just behind a box's silhouette (see
:func:`cinemagraph.data.scene.sample_scene`), so that small island layers between a near and a
far layer, like a photo's hand or branch, are common in training.

Relighting (``relight``, the share of synthetic scenes relit, chosen by scene): the sky and
the fluids darker, each box darker or brighter (:func:`cinemagraph.data.scene.relight`), so
that what holes reveal is not mostly brighter than what hid it.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from ..depth.base import median_depth
from ..errors import UserError
from ..ldi import LDISettings
from ..motion.field import MotionField
from ..render.camera import border_needed, named_path
from ..render.pipeline import RenderSettings, plan_cloud_view
from ..render.pointcloud import point_index
from ..render.splat import SplatPlan

log = logging.getLogger("cinemagraph.train")

KINDS = ("anim", "nvs", "both")


class NoFeatures:
    """Zero-channel point features: the cloud's geometry only (the networks add features)."""

    description = "none (geometry only)"
    channels = 0

    def __call__(self, ldi) -> Tensor:
        return ldi.color.new_zeros(ldi.color.shape[0], 0, *ldi.color.shape[-2:])


def _generator(seed: int, epoch: int, index: int, stream: int = 7) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index, stream])


def color_transform(rng: np.random.Generator) -> Tensor:
    """A random colour transform ``(3, 3)`` (applied as ``M @ rgb``): a rotation about the
    grey axis by a uniform angle (hue), the colour's distance from grey scaled by
    ``U(0.4, 1.3)`` (saturation) and everything by ``U(0.6, 1.15)`` (gain). Greys stay grey."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    saturation, gain = rng.uniform(0.4, 1.3), rng.uniform(0.6, 1.15)
    axis = np.ones(3) / np.sqrt(3.0)
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]],
                      [-axis[1], axis[0], 0.0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross
    grey = np.outer(axis, axis)
    matrix = gain * (grey + saturation * rotation @ (np.eye(3) - grey))
    return torch.from_numpy(matrix.astype(np.float32))


def soften_depth(depth: Tensor, sigma: float) -> Tensor:
    """``depth (..., H, W)`` with its disparity blurred by a Gaussian of ``sigma`` pixels
    (borders replicated): the soft edges of a monocular depth estimate."""
    from kornia.filters import gaussian_blur2d

    radius = max(1, int(np.ceil(3.0 * sigma)))
    disparity = 1.0 / depth.clamp_min(1e-6).reshape(-1, 1, *depth.shape[-2:])
    blurred = gaussian_blur2d(disparity, (2 * radius + 1,) * 2, (sigma, sigma),
                              border_type="replicate")
    return (1.0 / blurred).reshape(depth.shape)


def recolor(colors: Tensor, matrix: Tensor) -> Tensor:
    """``colors (..., 3, H, W)`` through the colour transform ``matrix (3, 3)``, clamped."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(colors), colors).clamp(0.0, 1.0)


class SpaceTimeSamples(torch.utils.data.Dataset):
    """Items of :mod:`this module <cinemagraph.train.spacetime_samples>` from the synthetic
    scenes (``source="synthetic"``) or from videos (:class:`~.spacetime_data.VideoAnimations`,
    ``anim`` only)."""

    def __init__(self, data, per_scene: int = 2, settings: RenderSettings | None = None):
        self.data, self.per_scene = data, max(1, int(per_scene))
        self.source = build_scene_source(data)
        self.kinds = tuple(k for k in data.kinds if k in KINDS)
        if getattr(self.source, "kinds", None) == ("anim",):
            self.kinds = ("anim",)
        self.steps = int(data.frames)
        self.two_frame = bool(data.two_frame)
        self.color_augment = float(data.color_augment)
        self.depth_blur = float(data.depth_blur)
        sigma = self.depth_blur_sigma = tuple(float(v) for v in data.depth_blur_sigma)
        if self.depth_blur > 0 and not (len(sigma) == 2 and 0 < sigma[0] <= sigma[1]):
            raise UserError(f"spacetime.data.depth_blur_sigma={list(sigma)}: "
                            "give [low, high] pixels with 0 < low <= high")
        self.ldi_settings = LDISettings(max_layers=data.max_layers)
        self.settings = settings or RenderSettings()
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def _choose(self, index: int) -> tuple[str, str | None, list[int]]:
        rng = _generator(int(self.data.seed), self.epoch, index)
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        path = None
        if kind != "anim":
            path = list(self.data.paths)[int(rng.integers(len(self.data.paths)))]
        first = 1 if kind != "nvs" else 0
        count = min(self.per_scene, self.steps - first)
        frames = sorted(rng.choice(np.arange(first, self.steps), size=count, replace=False).tolist())
        return kind, path, frames

    def __getitem__(self, index: int) -> dict:
        from ..pipeline import Components, build_scene

        kind, path_name, frames = self._choose(index)
        animated = kind != "nvs"
        end = self.two_frame and kind == "anim"
        raw = self.source.scene(index, kind, path_name, frames, end)
        if self.color_augment > 0:
            rng = _generator(int(self.data.seed), self.epoch, index, stream=11)
            if rng.random() < self.color_augment:
                matrix = color_transform(rng)
                raw = {**raw, **{k: recolor(raw[k], matrix) for k in ("image", "targets", "end")
                                 if raw[k] is not None}}
        if self.depth_blur > 0:
            rng = _generator(int(self.data.seed), self.epoch, index, stream=13)
            if rng.random() < self.depth_blur:
                raw = {**raw, "depth": soften_depth(raw["depth"], rng.uniform(*self.depth_blur_sigma))}
        image, depth, K = raw["image"][None], raw["depth"][None], raw["K"]
        mask = raw["mask"][None]
        motion = MotionField(raw["motion"][None] * mask, mask.bool())
        size = tuple(image.shape[-2:])
        border = 0.0
        if path_name is not None:
            border = border_needed(raw["path"], K, size, 1.0, median_depth(depth))
        geometry = Components(features=NoFeatures())
        with torch.no_grad():
            scene = build_scene(image, depth, motion, self.steps, geometry, self.ldi_settings,
                                border=border)
            end_scene = None
            if end:
                end_scene = build_scene(raw["end"][None], depth, motion, self.steps, geometry,
                                        self.ldi_settings, border=border)
            samples = []
            for i, t in enumerate(frames):
                if path_name is None:
                    pose, view_K = torch.eye(4), K
                else:
                    pose, view_K = raw["path"].world_to_camera[t], raw["path"].K[t]
                step = t if animated else 0
                fwd = _compact(plan_cloud_view(scene.cloud, scene.cloud.positions(step), pose,
                                               view_K, size, self.settings))
                bwd = None
                if animated and scene.cloud.moving.numel():
                    back = end_scene.cloud if end_scene is not None else scene.cloud
                    bwd = _compact(plan_cloud_view(back, back.positions(self.steps - t,
                                                                        backward=True),
                                                   pose, view_K, size, self.settings))
                samples.append({"t": t, "time": t / self.steps if bwd is not None else 0.0,
                                "forward": fwd, "backward": bwd,
                                "target": raw["targets"][i], "valid": raw["valid"][i]})
        return {"kind": kind, "path": path_name, "ldi": scene.ldi,
                "end_ldi": end_scene.ldi if end_scene is not None else None,
                "points": point_index(scene.ldi),
                "end_points": point_index(end_scene.ldi) if end_scene is not None else None,
                "samples": samples}


def build_scene_source(data):
    """The scenes of ``spacetime.data``: synthetic, or the user's videos."""
    if data.source == "videos":
        from .spacetime_data import VideoAnimations

        if not data.root:
            raise UserError("spacetime.data.root is not set: give the folder of the videos "
                            "(layout in cinemagraph/train/spacetime_data.py)")
        return VideoAnimations(data.root, data.split, tuple(data.size), data.frames, data.seed)
    if data.source != "synthetic":
        raise UserError(f"spacetime.data.source='{data.source}': use synthetic or videos")
    unknown = [k for k in data.kinds if k not in KINDS]
    if unknown or not data.kinds:
        raise UserError(f"spacetime.data.kinds must name some of {', '.join(KINDS)}"
                        + (f" (not {', '.join(unknown)})" if unknown else ""))
    for key in ("floaters", "relight"):
        if not 0.0 <= getattr(data, key) <= 1.0:
            raise UserError(f"spacetime.data.{key}={getattr(data, key)}: give a share in [0, 1]")
    if data.photos and data.split != "train":
        raise UserError(f"spacetime.data.photos is for the train split, not "
                        f"'{data.split}': the other splits' photographs stay held out")
    from ..data.textures import PHOTOS, photo_files

    photos = photo_files(data.photos)
    log.info("synthetic scenes (%s split): photograph textures from the %d built-in "
             "photographs%s", data.split, len(PHOTOS[data.split]),
             f" and {len(photos)} in '{data.photos}'" if photos else "")
    return SyntheticSceneSource(data.scenes, data.split, data.seed, tuple(data.size),
                                data.frames, data.supersample, data.floaters, data.relight,
                                photos)


class SyntheticSceneSource:
    """The synthetic scenes (:mod:`cinemagraph.data.scene`), rendering only what an item uses.
    A share ``floaters`` of them (chosen by scene, the same every epoch) get 2-4 floaters, and
    a share ``relight`` are relit (:func:`cinemagraph.data.scene.relight`); ``photos``: image
    files drawn alongside the split's photographs (:func:`cinemagraph.data.scene.sample_scene`)."""

    def __init__(self, length: int, split: str, seed: int, size: tuple[int, int], frames: int,
                 supersample: int = 1, floaters: float = 0.0, relight: float = 0.0,
                 photos: tuple[str, ...] = ()):
        self.length, self.split, self.seed = length, split, seed
        self.size, self.frames, self.supersample = tuple(size), frames, supersample
        self.floaters = float(floaters)
        self.relight = float(relight)
        self.photos = tuple(photos)

    def relight_rng(self, index: int) -> np.random.Generator | None:
        """The generator that relights scene ``index``, or None for a share ``1 - relight``."""
        if self.relight <= 0:
            return None
        rng = np.random.default_rng([self.seed, index, 19])
        return rng if rng.random() < self.relight else None

    def floaters_of(self, index: int) -> int:
        """How many floaters scene ``index`` has (0 for a share ``1 - floaters``)."""
        if self.floaters <= 0:
            return 0
        rng = np.random.default_rng([self.seed, index, 17])
        return int(rng.integers(2, 5)) if rng.random() < self.floaters else 0

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int, kind: str, path_name: str | None, frames: list[int],
              end: bool) -> dict:
        """The photo, its depth, motion, mask and ``K``, the targets of ``frames`` (and the
        end photo at frame ``N`` with ``end``)."""
        from ..data.scene import relight, render_views, sample_scene, scene_seed, source_geometry

        scene = sample_scene(scene_seed(self.seed, self.split, index), self.split, self.size,
                             floaters=self.floaters_of(index), photos=self.photos)
        rng = self.relight_rng(index)
        if rng is not None:
            scene = relight(scene, rng)
        st = scene.tensors()
        K = scene.K
        geometry = scene.geometry or source_geometry(st, K, self.size)
        eye = torch.eye(4)
        poses, Ks, times = [eye], [K], [0.0]
        path = None
        if path_name is not None:
            path = named_path(path_name, self.frames, K, 1.0, median_depth(geometry["depth"]))
        for t in frames:
            poses.append(eye if path is None else path.world_to_camera[t])
            Ks.append(K if path is None else path.K[t])
            times.append(float(t) if kind != "nvs" else 0.0)
        if end:
            poses.append(eye)
            Ks.append(K)
            times.append(float(self.frames))
        colors, valid = render_views(st, torch.stack(poses), torch.stack(Ks), self.size, times,
                                     self.supersample)
        n = len(frames)
        return {"image": colors[0], "depth": geometry["depth"], "motion": geometry["motion"],
                "mask": geometry["mask"], "K": K, "path": path,
                "targets": colors[1:1 + n], "valid": valid[1:1 + n],
                "end": colors[1 + n] if end else None}


def collate(items: list[dict]) -> list[dict]:
    return items


def _compact(view: tuple[SplatPlan, Tensor, Tensor, Tensor]
             ) -> tuple[SplatPlan, Tensor, Tensor, Tensor]:
    """A planned view as the loader hands it on: the plan's point indices as int32 (the plan
    a third smaller than with int64; :func:`to_device` widens them again) and the depth and
    displacement and moving share in memory of their own rather than views of one tensor."""
    plan, depth, displacement, moving = view
    if plan.table.numel() and int(plan.table.max()) < 2**31:
        plan = plan._replace(table=plan.table.to(torch.int32))
    return plan, depth.contiguous(), displacement.contiguous(), moving.contiguous()


def to_device(item: dict, device) -> dict:
    """``item`` with its layers, plans and targets on ``device``."""
    def move(x):
        return None if x is None else x.to(device, non_blocking=True)

    def move_ldi(ldi):
        return None if ldi is None else ldi.to(device, non_blocking=True)

    samples = []
    for s in item["samples"]:
        moved = dict(s)
        for key in ("forward", "backward"):
            if s[key] is not None:
                plan, depth, displacement, moving = s[key]
                plan = plan.to(device)  # int32 indices travel; the splat gets int64 as ever
                moved[key] = (plan._replace(table=plan.table.long()), move(depth),
                              move(displacement), move(moving))
        moved["target"], moved["valid"] = move(s["target"]), move(s["valid"])
        samples.append(moved)
    return {**item, "ldi": move_ldi(item["ldi"]), "end_ldi": move_ldi(item["end_ldi"]),
            "points": move(item["points"]), "end_points": move(item["end_points"]),
            "samples": samples}
