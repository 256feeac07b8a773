"""The whole render: photo, depth and motion in, frames out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from ..conventions import project, transform_points
from .decode import Decoder, SplattedFrame
from .camera import CameraPath
from .pointcloud import AnimatedPointCloud
from .splat import SplatPlan, apply_splat_plan, plan_splat, splat_points

log = logging.getLogger(__name__)


@dataclass
class RenderSettings:
    """``point_radius``: pixels at the source camera; ``points_per_pixel``: K;
    ``symmetric``: 3D symmetric animation (forward and backward clouds blended);
    ``backend``: ``"torch"`` (ours) or ``"pytorch3d"``."""

    point_radius: float = 1.0
    points_per_pixel: int = 8
    symmetric: bool = True
    backend: str = "torch"


def get_splatter(backend: str) -> Callable:
    """Return the splatting function of ``backend`` ("torch" or "pytorch3d")."""
    if backend == "torch":
        return splat_points
    if backend == "pytorch3d":
        from .pytorch3d_backend import splat_points_pytorch3d

        return splat_points_pytorch3d
    raise ValueError(f"unknown renderer backend '{backend}': use torch or pytorch3d")


def splat_cloud(cloud: AnimatedPointCloud, positions: Tensor, world_to_camera: Tensor,
                K: Tensor, size: tuple[int, int], settings: RenderSettings,
                splatter: Callable = splat_points, displacement: bool = False) -> SplattedFrame:
    """Return the cloud at world ``positions (N, 3)`` splatted from one camera, with the
    points' displacement where ``displacement`` (a decoder that reads it asks for it).
    Each layer is a surface (:mod:`cinemagraph.render.splat`): its points blend, layers
    occlude one another."""
    xy, z, radius_px = _project_cloud(cloud, positions, world_to_camera, K)
    geometry = _geometry(cloud, xy, z, K) if displacement else z[:, None]
    g = geometry.shape[1]
    out = splatter(xy, z, radius_px, torch.cat([cloud.features, geometry], dim=1), size,
                   settings.points_per_pixel, surface=cloud.layer)
    features, geometry = out.features[:, :-g], out.features[:, -g:] / out.alpha.clamp_min(1e-6)
    if not displacement:
        return SplattedFrame(features, out.alpha, geometry[:, :1])
    return SplattedFrame(features, out.alpha, geometry[:, :1], geometry[:, 1:3],
                         geometry[:, 3:])


def plan_cloud_view(cloud: AnimatedPointCloud, positions: Tensor, world_to_camera: Tensor,
                    K: Tensor, size: tuple[int, int],
                    settings: RenderSettings) -> tuple[SplatPlan, Tensor, Tensor, Tensor]:
    """Return the :class:`~cinemagraph.render.splat.SplatPlan` of what :func:`splat_cloud`
    splats, its composited depth ``(1, 1, H, W)``, displacement ``(1, 2, H, W)`` and share of
    moving points ``(1, 1, H, W)`` (see :class:`~cinemagraph.render.decode.SplattedFrame`);
    the cloud's features are not needed (apply any with
    :func:`~cinemagraph.render.splat.apply_splat_plan`)."""
    xy, z, radius_px = _project_cloud(cloud, positions, world_to_camera, K)
    plan = plan_splat(xy, z, radius_px, size, settings.points_per_pixel, surface=cloud.layer)
    geometry = apply_splat_plan(plan, _geometry(cloud, xy, z, K)).features
    geometry = geometry / plan.alpha.clamp_min(1e-6)
    return plan, geometry[:, :1], geometry[:, 1:3], geometry[:, 3:]


def _geometry(cloud: AnimatedPointCloud, xy: Tensor, z: Tensor, K: Tensor) -> Tensor:
    """Per point ``(N, 4)``: camera depth, the displacement ``(x, y)`` in pixels from
    where the photo shows the point, and 1 where the motion field moves the point (else 0).
    The cloud's pixels are those of its layers, which extend past the photo by a border:
    they are shifted by the difference of the principal points (the view's and the cloud's)
    into the view's frame."""
    source = cloud.pixels - (cloud.K[:2, 2] - K[:2, 2]).to(cloud.pixels)
    moving = torch.zeros_like(z)
    if cloud.moving.numel():
        moving[cloud.moving] = 1.0
    return torch.cat([z[:, None], xy - source, moving[:, None]], dim=1)


def _project_cloud(cloud: AnimatedPointCloud, positions: Tensor, world_to_camera: Tensor,
                   K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel positions, camera depths and footprint radii in pixels of the cloud's points."""
    xy, z = project(transform_points(world_to_camera, positions), K)
    return xy, z, cloud.radius * K[0, 0] / z.clamp_min(1e-6)


def render_frames(cloud: AnimatedPointCloud, path: CameraPath, size: tuple[int, int],
                  decoder: Decoder, settings: RenderSettings | None = None,
                  progress: bool = False) -> Iterator[Tensor]:
    """Yield the frames ``(1, 3, H, W)`` of the cinemagraph along ``path``.

    The animation period is the number of frames ``N = len(path)``: frame ``t`` shows the
    forward cloud after ``t`` steps and the backward cloud after ``N - t`` steps of the
    reversed flow, blended by ``t / N``, so frame ``N`` would equal frame 0 and the video
    loops. Without ``symmetric``, only the forward cloud is drawn.
    """
    settings = settings or RenderSettings()
    splatter = get_splatter(settings.backend)
    n = len(path)
    if cloud.steps < n:
        raise ValueError(f"the cloud holds {cloud.steps} steps of motion; {n} are needed")
    animated = cloud.moving.numel() > 0
    frames = range(n)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, desc="rendering", unit="frame")
    moved = getattr(decoder, "reads_displacement", False)
    for t in frames:
        pose, K = path.world_to_camera[t].to(cloud.K), path.K[t].to(cloud.K)
        fwd = splat_cloud(cloud, cloud.positions(t), pose, K, size, settings, splatter, moved)
        bwd = None
        if animated and settings.symmetric and t > 0:
            bwd = splat_cloud(cloud, cloud.positions(n - t, backward=True), pose, K, size,
                              settings, splatter, moved)
        yield decoder(fwd, bwd, t / n)
