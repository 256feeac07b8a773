"""Camera paths: named paths scaled to the scene, and keyframed paths from JSON.

All positions are in units of the scene's near depth ``s`` (the 2nd percentile of depth; 1
after the pipeline's normalisation), so the same path gives the same parallax on every
photo. ``A = 0.04 s`` moves the nearest content by about ``0.04 f`` pixels (51 px on a
1280-pixel-wide photo). Every path starts at the source camera (frame 0 shows the photo).
Closed paths end where they start, so the video loops without a jump.

============  ======  ===========================================================
name          closed  motion (``tau`` runs over ``[0, 1)`` for closed paths, ``[0, 1]`` else)
============  ======  ===========================================================
static        yes     none
zoom-in       no      forward ``0.15 s`` (eased)
zoom-out      no      backward ``0.15 s`` (eased)
side          yes     ``x = A sin(2 pi tau)``
up-down       yes     ``y = A sin(2 pi tau)``
circle        yes     ``x = A sin(2 pi tau)``, ``y = A (1 - cos(2 pi tau))``,
                      ``z = A/2 (1 - cos(2 pi tau))``
swing         yes     ``x = 1.5 A sin(2 pi tau)``, ``z = A/2 (1 - cos(2 pi tau))``, turning
                      to keep looking at the median depth
dolly-zoom    no      backward ``0.3 m`` (``m`` the median depth) while the focal
                      length grows so that the median-depth plane keeps its size
ken-burns     no      forward ``0.08 s`` with a pan of ``(A, -A/2)`` (eased)
============  ======  ===========================================================

Keyframed JSON (``--camera path.json``)::

    {"closed": false,
     "keyframes": [{"time": 0.0, "position": [0, 0, 0]},
                   {"time": 1.0, "position": [0.05, 0, 0.1], "rotation": [5, 0, 0],
                    "zoom": 1.0}]}

``time`` in ``[0, 1]`` increasing (first 0, last 1), ``position`` ``[x, y, z]`` of the camera
in units of ``s`` (x right, y down, z forward), ``rotation`` ``[yaw, pitch, roll]`` in degrees
(optional, default 0), ``zoom`` a focal-length factor (optional, default 1). Values are
interpolated linearly between keyframes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError

NAMED_PATHS = ("static", "zoom-in", "zoom-out", "side", "up-down", "circle", "swing",
               "dolly-zoom", "ken-burns")
AMPLITUDE = 0.04


@dataclass
class CameraPath:
    """``world_to_camera``: ``(T, 4, 4)``; ``K``: ``(T, 3, 3)``; ``closed``: loops seamlessly."""

    name: str
    world_to_camera: Tensor
    K: Tensor
    closed: bool

    def __len__(self) -> int:
        return self.world_to_camera.shape[0]


def look_at(eye: Tensor, target: Tensor) -> Tensor:
    """Return the world-to-camera ``(4, 4)`` of a camera at ``eye (3,)`` looking at ``target``.

    The camera's y axis points down, as close to world +y as the view direction allows.
    """
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    down = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype)
    right = torch.nn.functional.normalize(torch.linalg.cross(down, forward), dim=0)
    new_down = torch.linalg.cross(forward, right)
    R = torch.stack([right, new_down, forward])
    out = torch.eye(4, dtype=eye.dtype)
    out[:3, :3] = R
    out[:3, 3] = -R @ eye
    return out


def _euler(yaw: float, pitch: float, roll: float) -> Tensor:
    """Return the camera-to-world rotation for yaw (about y), pitch (about x), roll (about z)."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    Ry = torch.tensor([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    Rx = torch.tensor([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    Rz = torch.tensor([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return Ry @ Rx @ Rz


def _pose(position: Tensor, rotation: Tensor | None = None) -> Tensor:
    """Return world-to-camera for a camera at ``position`` with camera-to-world ``rotation``."""
    R = torch.eye(3) if rotation is None else rotation
    out = torch.eye(4)
    out[:3, :3] = R.transpose(0, 1)
    out[:3, 3] = -R.transpose(0, 1) @ position
    return out


def named_path(name: str, frames: int, K: Tensor, near: float = 1.0,
               median: float = 3.0) -> CameraPath:
    """Return the named camera path of ``frames`` poses for intrinsics ``K (3, 3)``.

    ``near`` and ``median`` are the scene's near and median depth (see the module docstring).
    All frames are computed at once (a loop over frames costs milliseconds per path, which
    matters to the synthetic-data generator).
    """
    if name not in NAMED_PATHS:
        raise UserError(f"unknown camera '{name}': use one of {', '.join(NAMED_PATHS)}, or a "
                        "path JSON file")
    closed = name in ("static", "side", "up-down", "circle", "swing")
    a = AMPLITUDE * near
    i = torch.arange(frames, dtype=torch.float64)
    tau = i / frames if closed else i / max(frames - 1, 1)
    angle = 2.0 * math.pi * tau
    ease = tau * tau * (3.0 - 2.0 * tau)
    zero = torch.zeros_like(tau)
    focal = torch.ones_like(tau)
    if name == "zoom-in":
        pos = torch.stack([zero, zero, 0.15 * near * ease], 1)
    elif name == "zoom-out":
        pos = torch.stack([zero, zero, -0.15 * near * ease], 1)
    elif name == "side":
        pos = torch.stack([a * torch.sin(angle), zero, zero], 1)
    elif name == "up-down":
        pos = torch.stack([zero, a * torch.sin(angle), zero], 1)
    elif name == "circle":
        pos = torch.stack([a * torch.sin(angle), a * (1 - torch.cos(angle)),
                           0.5 * a * (1 - torch.cos(angle))], 1)
    elif name == "swing":
        pos = torch.stack([1.5 * a * torch.sin(angle), zero, 0.5 * a * (1 - torch.cos(angle))], 1)
    elif name == "dolly-zoom":
        back = 0.3 * median * ease
        pos = torch.stack([zero, zero, -back], 1)
        focal = (median + back) / median
    elif name == "ken-burns":
        pos = torch.stack([a * ease, -0.5 * a * ease, 0.08 * near * ease], 1)
    else:  # static
        pos = torch.stack([zero, zero, zero], 1)
    poses = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    if name == "swing":
        target = torch.tensor([0.0, 0.0, median], dtype=torch.float64)
        forward = torch.nn.functional.normalize(target - pos, dim=1)
        down = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(forward)
        right = torch.nn.functional.normalize(torch.linalg.cross(down, forward), dim=1)
        R = torch.stack([right, torch.linalg.cross(forward, right), forward], 1)
        poses[:, :3, :3] = R
        poses[:, :3, 3] = -(R @ pos[:, :, None])[:, :, 0]
    else:
        poses[:, :3, 3] = -pos
    intrinsics = K.to(torch.float64).repeat(frames, 1, 1)
    intrinsics[:, 0, 0] *= focal
    intrinsics[:, 1, 1] *= focal
    return CameraPath(name, poses.to(torch.float32), intrinsics.to(K.dtype), closed)


def _number_list(value, n: int, where: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == n
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)):
        raise UserError(f"{where} must be a list of {n} numbers, got {value!r:.60}")
    return [float(v) for v in value]


def path_from_json(path: Path, frames: int, K: Tensor, near: float = 1.0) -> CameraPath:
    """Return the keyframed camera path in the JSON file ``path`` (format: module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"camera path file '{path}' does not exist: check the path, or use a "
                        f"named camera ({', '.join(NAMED_PATHS)})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"camera path file '{path}' is not valid JSON ({exc}): fix it") from None
    where = f"camera path file '{path}'"
    keys = data.get("keyframes") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise UserError(f"{where} needs a non-empty 'keyframes' list")
    times, positions, rotations, zooms = [], [], [], []
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or "time" not in key or "position" not in key:
            raise UserError(f"{where}, keyframe {i}: needs 'time' and 'position'")
        extra = set(key) - {"time", "position", "rotation", "zoom"}
        if extra:
            raise UserError(f"{where}, keyframe {i}: unknown keys {sorted(extra)}")
        t = key["time"]
        if not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0 or (times and t <= times[-1]):
            raise UserError(f"{where}, keyframe {i}: 'time' must be in [0, 1] and increasing")
        zoom = key.get("zoom", 1.0)
        if not isinstance(zoom, (int, float)) or not zoom > 0:
            raise UserError(f"{where}, keyframe {i}: 'zoom' must be a positive number")
        times.append(float(t))
        positions.append(_number_list(key["position"], 3, f"{where}, keyframe {i} 'position'"))
        rotations.append(_number_list(key.get("rotation", [0, 0, 0]), 3,
                                      f"{where}, keyframe {i} 'rotation'"))
        zooms.append(float(zoom))
    if times[0] != 0.0 or (len(times) > 1 and times[-1] != 1.0):
        raise UserError(f"{where}: the first keyframe's time must be 0 and the last one's 1")
    closed = bool(data.get("closed", False))
    poses, intrinsics = [], []
    for i in range(frames):
        tau = i / frames if closed else i / max(frames - 1, 1)
        j = max(0, min(len(times) - 2, sum(t <= tau for t in times) - 1))
        if len(times) == 1:
            u, j = 0.0, 0
        else:
            u = (tau - times[j]) / (times[j + 1] - times[j])
            u = min(max(u, 0.0), 1.0)
        j2 = min(j + 1, len(times) - 1)
        lerp = lambda a, b: [x + u * (y - x) for x, y in zip(a, b)]  # noqa: E731
        pos = torch.tensor(lerp(positions[j], positions[j2])) * near
        rot = _euler(*lerp(rotations[j], rotations[j2]))
        zoom = zooms[j] + u * (zooms[j2] - zooms[j])
        poses.append(_pose(pos, rot))
        k = K.clone()
        k[0, 0] *= zoom
        k[1, 1] *= zoom
        intrinsics.append(k)
    return CameraPath(path.stem, torch.stack(poses), torch.stack(intrinsics), closed)


def border_needed(path: CameraPath, K: Tensor, size: tuple[int, int], near: float = 1.0,
                  median: float = 3.0, cap: float = 0.15) -> float:
    """Return how far past the photo's edges ``path`` looks, as a fraction of the long side.

    The corners and edge midpoints of every view, at depths from ``near`` to far away, are
    projected into the source camera (intrinsics ``K (3, 3)``, image ``size = (H, W)``); the
    largest distance outside the photo, plus one percent, capped at ``cap``. 0 for paths that
    stay inside the photo's frustum (``static``, ``zoom-in``).
    """
    h, w = size
    xs = torch.tensor([0.0, (w - 1) / 2, w - 1.0])
    ys = torch.tensor([0.0, (h - 1) / 2, h - 1.0])
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).view(-1, 2)
    worst = 0.0
    for depth in (near, 2.0 * near, median, 4.0 * median, 1000.0 * median):
        for pose, k in zip(path.world_to_camera, path.K):
            cam = torch.stack([(grid[:, 0] - k[0, 2]) / k[0, 0] * depth,
                               (grid[:, 1] - k[1, 2]) / k[1, 1] * depth,
                               torch.full_like(grid[:, 0], depth)], -1)
            world = (cam - pose[:3, 3]) @ pose[:3, :3]  # R^T (X - t)
            z = world[:, 2].clamp_min(1e-6)
            px = K[0, 0] * world[:, 0] / z + K[0, 2]
            py = K[1, 1] * world[:, 1] / z + K[1, 2]
            over = torch.maximum(torch.maximum(-px, px - (w - 1)),
                                 torch.maximum(-py, py - (h - 1))).max().item()
            worst = max(worst, over)
    if worst <= 0.5:
        return 0.0
    return min(worst / max(h, w) + 0.01, cap)


#: The largest zoom :func:`framed` applies; past it, a path shows some of the smooth fill
#: beyond the photo's edges (:func:`cinemagraph.pipeline.build_scene`).
MAX_FRAMING_ZOOM = 1.25


@dataclass
class Framing:
    """How :func:`framed` crops a path: ``zoom`` (focal-length factor, 1: none), the crop's
    ``centre`` ``(x, y)`` in the unzoomed view's pixels, and ``uncovered``: the largest
    distance in pixels that the cropped path still looks past the photo (0 unless the zoom
    hit :data:`MAX_FRAMING_ZOOM`)."""

    zoom: float
    centre: tuple[float, float]
    uncovered: float


def framed(path: CameraPath, depth: Tensor, K: Tensor,
           max_zoom: float = MAX_FRAMING_ZOOM) -> tuple[CameraPath, Framing]:
    """Return ``path`` with every view cropped alike (one zoom, one crop centre) so that it
    shows nothing past the edges of the photo of ``depth (1, 1, H, W)`` and intrinsics
    ``K (3, 3)``, as 3D-photo viewers crop; and the :class:`Framing` used.

    The photo's edge pixels are lifted with their depth and projected into every view: on
    each side, the farthest that the photo's edge comes into a view is the margin that side
    needs. The crop keeps the photo's aspect ratio, as large as those margins allow, centred
    between them; at most ``max_zoom``. A path that stays inside the photo (``static``,
    ``zoom-in``) is returned as it is.
    """
    from ..conventions import project, transform_points, unproject

    h, w = depth.shape[-2:]
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    # Left, right, top, bottom edge: which side each edge pixel is on, and the coordinate
    # (x for left/right, y for top/bottom) that says how far it comes in.
    xy = torch.cat([torch.stack([torch.zeros(h), ys], 1),
                    torch.stack([torch.full((h,), w - 1.0), ys], 1),
                    torch.stack([xs, torch.zeros(w)], 1),
                    torch.stack([xs, torch.full((w,), h - 1.0)], 1)])
    side = torch.repeat_interleave(torch.arange(4), torch.tensor([h, h, w, w]))
    K = K.detach().float().cpu()
    d = depth[0, 0].detach().float().cpu()
    points = unproject(xy, d[xy[:, 1].long(), xy[:, 0].long()], K)
    margin = [0.0] * 4
    for pose, k in zip(path.world_to_camera.float(), path.K.float()):
        p, zc = project(transform_points(pose, points), k)
        inward = torch.stack([p[:, 0], (w - 1.0) - p[:, 0], p[:, 1], (h - 1.0) - p[:, 1]], 1)
        for i in range(4):
            seen = inward[(side == i) & (zc > 1e-6), i]
            # Within half a pixel of the frame's edge shows nothing past it.
            if seen.numel() and seen.max() > 0.5:
                margin[i] = max(margin[i], float(seen.max()))
    left, right, top, bottom = margin
    span_x, span_y = w - 1.0, h - 1.0
    need = max(span_x / max(span_x - left - right, 1e-6),
               span_y / max(span_y - top - bottom, 1e-6))
    if need <= 1.0 + 1e-3:
        return path, Framing(1.0, ((w - 1) / 2, (h - 1) / 2), 0.0)
    zoom = min(need, max_zoom)
    centre, uncovered = [], 0.0
    for lo, hi, span in ((left, right, span_x), (top, bottom, span_y)):
        half = span / zoom / 2
        # Centred between the margins; where the zoom is short, centred on what is covered.
        c = float(min(max((lo + span - hi) / 2, half), span - half))
        centre.append(c)
        uncovered = max(uncovered, zoom * (lo - (c - half)), zoom * (hi - (span - c - half)))
    intrinsics = path.K.clone()
    for axis in (0, 1):
        c0 = intrinsics[:, axis, 2]
        intrinsics[:, axis, axis] *= zoom
        intrinsics[:, axis, 2] = c0 + zoom * (c0 - centre[axis])
    return (CameraPath(path.name, path.world_to_camera, intrinsics, path.closed),
            Framing(zoom, (centre[0], centre[1]), uncovered))


def build_camera_path(spec: str, frames: int, K: Tensor, near: float = 1.0,
                      median: float = 3.0) -> CameraPath:
    """Return the path named ``spec``, or read from ``spec`` when it names a ``.json`` file."""
    if spec.lower().endswith(".json"):
        return path_from_json(Path(spec), frames, K, near)
    return named_path(spec, frames, K, near, median)
