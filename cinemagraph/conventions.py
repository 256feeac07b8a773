"""The coordinate and tensor conventions of the whole package, and the geometry built on them.

Every module follows these rules; docstrings elsewhere link here instead of repeating them.

Tensors
    Images and maps are ``(B, C, H, W)`` float tensors. Colour is RGB in ``[0, 1]``.
    A single image is ``B = 1``; layered depth images stack layers on ``B``.

Pixel coordinates
    ``x`` is the column, ``y`` the row, both in pixels. The centre of the top-left pixel is
    ``(0, 0)`` and the centre of the bottom-right one is ``(W - 1, H - 1)`` (integer pixel
    centres, as ``kornia.utils.create_meshgrid(..., normalized_coordinates=False)``).
    2D vectors (motion, displacement) are ``(dx, dy)`` on the channel axis, in pixels.

Camera
    x right, y down, z forward (OpenCV). A point in front of the camera has ``z > 0``.
    Intrinsics ``K`` are ``(B, 3, 3)``. The default intrinsics of a photo, as in the original
    work, use the focal length ``f = max(H, W)`` pixels and the principal point at the image
    centre ``((W - 1) / 2, (H - 1) / 2)`` (the original writes ``W / 2, H / 2`` with the same
    integer-centre grid, half a pixel away; this only moves the principal point).
    Extrinsics are world-to-camera ``(B, 4, 4)`` matrices: ``X_cam = R @ X_world + t``.
    The world frame is the source camera's frame.

Depth
    A tensor called ``depth`` holds z-depth (distance along the optical axis, ``> 0``), never
    disparity; a name says ``disparity`` where it is ``1 / depth``. Depth is scale-free: the
    pipeline normalises every scene so that its near depth (2nd percentile) is 1, and camera
    paths are scaled to that.

Motion
    An Eulerian motion field ``M`` is ``(B, 2, H, W)`` in source-image pixels per frame.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_shape(name: str, tensor: Tensor, shape: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` if ``tensor`` does not match ``shape``.

    ``shape`` holds ints for fixed sizes and ``None`` for any size.
    """
    if tensor.dim() != len(shape) or any(
        s is not None and s != t for s, t in zip(shape, tensor.shape)
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(tensor.shape)}")


def default_intrinsics(height: int, width: int, batch: int = 1, device=None,
                       dtype=torch.float32) -> Tensor:
    """Return the default intrinsics ``K`` ``(B, 3, 3)`` of a ``height x width`` photo."""
    f = float(max(height, width))
    K = torch.tensor([[f, 0.0, (width - 1) / 2.0],
                      [0.0, f, (height - 1) / 2.0],
                      [0.0, 0.0, 1.0]], device=device, dtype=dtype)
    return K.expand(batch, 3, 3).clone()


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """Return the pixel centres ``(1, 2, H, W)``: channel 0 is ``x``, channel 1 is ``y``."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return torch.stack([xs, ys])[None]


def unproject(xy: Tensor, depth: Tensor, K: Tensor) -> Tensor:
    """Return camera-frame points ``(N, 3)`` for pixels ``xy (N, 2)`` at z-depth ``depth (N,)``.

    ``K`` is ``(3, 3)``.
    """
    x = (xy[:, 0] - K[0, 2]) / K[0, 0]
    y = (xy[:, 1] - K[1, 2]) / K[1, 1]
    return torch.stack([x * depth, y * depth, depth], dim=-1)


def project(points: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Return pixel coordinates ``(N, 2)`` and z-depth ``(N,)`` of camera-frame ``points (N, 3)``.

    Points with ``z <= 0`` get non-finite or meaningless coordinates; callers cull them by ``z``.
    """
    z = points[:, 2]
    zs = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    x = K[0, 0] * points[:, 0] / zs + K[0, 2]
    y = K[1, 1] * points[:, 1] / zs + K[1, 2]
    return torch.stack([x, y], dim=-1), z


def transform_points(world_to_camera: Tensor, points: Tensor) -> Tensor:
    """Return ``points (N, 3)`` moved by the rigid transform ``world_to_camera (4, 4)``."""
    return points @ world_to_camera[:3, :3].transpose(0, 1) + world_to_camera[:3, 3]


def bilinear_sample(field: Tensor, xy: Tensor, padding: str = "zeros") -> Tensor:
    """Return ``field (1, C, H, W)`` sampled at pixel coordinates ``xy (N, 2)``, as ``(N, C)``.

    Sampling is bilinear on the integer-centre grid; outside the image, ``padding`` decides
    (``"zeros"``, or ``"border"`` to repeat the edge).
    """
    _, _, h, w = field.shape
    gx = 2.0 * xy[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * xy[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1).view(1, 1, -1, 2).to(field.dtype)
    out = torch.nn.functional.grid_sample(field, grid, mode="bilinear", padding_mode=padding,
                                          align_corners=True)
    return out[0, :, 0].transpose(0, 1)
