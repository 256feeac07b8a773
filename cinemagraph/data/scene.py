"""Synthetic scenes: analytic rectangles with textures, some of them flowing.

A scene is a set of rectangles in the world frame (the source camera's frame, see
:mod:`cinemagraph.conventions`): rectangle ``q`` is ``origin + a u + b v`` for ``a, b`` in
``[0, 1]``, with ``u`` and ``v`` orthogonal edges. A point of a rectangle has surface
coordinates ``s = (a |u|, b |v|)`` in scene units. Its colour is the rectangle's texture at
texel coordinates ``s * texel_scale + texel_offset``, times a per-rectangle tint.

Fluid rectangles carry a steady flow in surface coordinates, ``vel(s) = flow * (1 + shear
sin(2 pi c / period))`` with ``c = s . perp(flow)`` the coordinate across the stream. The
speed varies only across the stream, so the flow map is exact in closed form,
``phi_t(s) = s + t vel(s)``, and the appearance at frame ``t`` is the texture at
``s - t vel(s)``: the texture advected back along the flow. Seen from the source camera this
is a steady Eulerian image motion, ``M(x) = project(phi_1(s(x))) - x``, which is what the
scene exports (in source pixels per frame), with the fluid mask.

The family of scenes (:func:`sample_scene`): a ground plane with a small random slope, a far
sky backdrop, far cliffs or buildings (vertical rectangles), boxes (rocks) on the ground,
and one or two fluid regions among a river or lake lying on the ground, a waterfall in front
of a cliff, and clouds drifting on the sky; at least one box stands in front of a fluid
region, so a moving camera uncovers fluid that the source image does not show. Each scene
is scaled so that the 2nd percentile of its source depth is 1 (the pipeline's depth
normalisation), so ground truth and method share units and camera paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from ..conventions import default_intrinsics
from .textures import TEXTURE_SIZE, photo_texture, procedural_texture, sample_atlas

#: Splits and their codes in the seed derivation. ``val`` is for choosing between weights and
#: settings: its photographs are neither the training scenes' nor the test scenes'
#: (:data:`~cinemagraph.data.textures.PHOTOS`), as the test split's are not the training's.
SPLITS = {"train": 0, "test": 1, "val": 2}


def scene_seed(seed: int, split: str, index: int) -> int:
    """Return the generator seed of scene ``index`` of ``split`` for the dataset ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, split code, index)``, so
    no two splits share a seed (for the same dataset seed), and every scene is reproducible
    on its own.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}': use {', '.join(SPLITS)}")
    return int(np.random.SeedSequence([seed, SPLITS[split], index]).generate_state(1)[0])


@dataclass
class Rect:
    """One rectangle of a scene (see the module docstring); plain floats, JSON-friendly."""

    name: str
    origin: list[float]
    u: list[float]
    v: list[float]
    texture: int
    texel_scale: float
    texel_offset: list[float]
    tint: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    flow: list[float] = field(default_factory=lambda: [0.0, 0.0])
    shear: float = 0.0
    period: float = 1.0

    @property
    def fluid(self) -> bool:
        return self.flow[0] != 0.0 or self.flow[1] != 0.0


@dataclass
class Scene:
    """Rectangles, the texture atlas ``(3, S, T * S)`` and the source image size."""

    rects: list[Rect]
    atlas: Tensor
    textures: list[str]
    size: tuple[int, int]
    seed: int
    split: str
    #: The source view's :func:`source_geometry`, where already computed (same units).
    geometry: dict | None = None

    @property
    def K(self) -> Tensor:
        """The source intrinsics ``(3, 3)`` (the project's default for the image size)."""
        return default_intrinsics(*self.size)[0]

    def scaled(self, factor: float) -> "Scene":
        """Return the scene with every length multiplied by ``factor`` (same images)."""
        rects = []
        for r in self.rects:
            rects.append(Rect(r.name, [c * factor for c in r.origin], [c * factor for c in r.u],
                              [c * factor for c in r.v], r.texture, r.texel_scale / factor,
                              r.texel_offset, r.tint, [c * factor for c in r.flow], r.shear,
                              r.period * factor))
        geometry = None
        if self.geometry is not None:
            geometry = {**self.geometry, "depth": self.geometry["depth"] * factor}
        return Scene(rects, self.atlas, self.textures, self.size, self.seed, self.split, geometry)

    def describe(self) -> dict:
        """Return a JSON-friendly description (everything but the texel data)."""
        return {"seed": self.seed, "split": self.split, "size": list(self.size),
                "textures": self.textures,
                "rects": [{**r.__dict__, "fluid": r.fluid} for r in self.rects]}

    def tensors(self, device=None) -> "SceneTensors":
        return SceneTensors.of(self, device)


@dataclass
class SceneTensors:
    """The rectangles as stacked tensors, for the ray caster."""

    origin: Tensor  # (Q, 3)
    u: Tensor  # (Q, 3)
    v: Tensor  # (Q, 3)
    normal: Tensor  # (Q, 3)
    texture: Tensor  # (Q,)
    texel_scale: Tensor  # (Q,)
    texel_offset: Tensor  # (Q, 2)
    tint: Tensor  # (Q, 3)
    flow: Tensor  # (Q, 2)
    shear: Tensor  # (Q,)
    period: Tensor  # (Q,)
    fluid: Tensor  # (Q,) bool
    atlas: Tensor  # (3, S, T * S)

    @classmethod
    def of(cls, scene: Scene, device=None) -> "SceneTensors":
        def t(name, dtype=torch.float32):
            return torch.tensor([getattr(r, name) for r in scene.rects], dtype=dtype, device=device)

        u, v = t("u"), t("v")
        normal = torch.nn.functional.normalize(torch.linalg.cross(u, v), dim=1)
        return cls(t("origin"), u, v, normal, t("texture", torch.long), t("texel_scale"),
                   t("texel_offset"), t("tint"), t("flow"), t("shear"), t("period"),
                   torch.tensor([r.fluid for r in scene.rects], device=device),
                   scene.atlas.to(device))

    def velocity(self, rect: Tensor, s: Tensor) -> Tensor:
        """Return the flow ``(N, 2)`` (scene units per frame) at surface coordinates ``s``."""
        flow = self.flow[rect]
        speed = flow.norm(dim=1, keepdim=True)
        direction = flow / speed.clamp_min(1e-12)
        across = s[:, 0] * -direction[:, 1] + s[:, 1] * direction[:, 0]
        profile = 1.0 + self.shear[rect] * torch.sin(2.0 * math.pi * across / self.period[rect])
        return flow * profile[:, None]

    def surface_point(self, rect: Tensor, s: Tensor) -> Tensor:
        """Return world points ``(N, 3)`` at surface coordinates ``s (N, 2)`` of ``rect``."""
        u, v = self.u[rect], self.v[rect]
        return (self.origin[rect] + s[:, :1] * u / u.norm(dim=1, keepdim=True)
                + s[:, 1:] * v / v.norm(dim=1, keepdim=True))


@dataclass
class Hits:
    """What the rays of one camera hit: ``rect (N,)`` (-1: nothing), ``depth (N,)`` z-depth
    in that camera, ``s (N, 2)`` surface coordinates."""

    rect: Tensor
    depth: Tensor
    s: Tensor


def camera_rays(world_to_camera: Tensor, K: Tensor, xy: Tensor) -> tuple[Tensor, Tensor]:
    """Return the centre ``(3,)`` and world directions ``(N, 3)`` of the rays through pixels
    ``xy (N, 2)``, scaled so that the distance along a ray is the z-depth in that camera."""
    R, t = world_to_camera[:3, :3], world_to_camera[:3, 3]
    cam = torch.stack([(xy[:, 0] - K[0, 2]) / K[0, 0], (xy[:, 1] - K[1, 2]) / K[1, 1],
                       torch.ones_like(xy[:, 0])], dim=1)
    return -R.transpose(0, 1) @ t, cam @ R  # R^T cam


def trace(scene: SceneTensors, centre: Tensor, d: Tensor, view: Tensor | None = None,
          chunk: int | None = None) -> Hits:
    """Return the nearest rectangle hit by rays from camera centres along ``d (N, 3)``.

    ``centre`` is ``(3,)`` for one camera, or ``(V, 3)`` with ``view (N,)`` saying whose
    each ray is. ``Hits.depth`` is the ray parameter (the z-depth for :func:`camera_rays`).
    Ray casting against the analytic rectangles, independent of the point splatter. Rays
    are processed ``chunk`` at a time (default: 2^16 on the CPU, 2^20 on a GPU).
    """
    if chunk is None:
        chunk = 1 << (20 if d.is_cuda else 16)
    centre = centre.reshape(-1, 3)
    if view is None:
        view = torch.zeros(d.shape[0], dtype=torch.long, device=d.device)
    # Per camera: (centre - origin) . normal, . u, . v for every rectangle, (V, Q) each.
    rel = centre[:, None, :] - scene.origin[None]
    from_centre = [(rel * axis[None]).sum(-1) for axis in (scene.normal, scene.u, scene.v)]
    uu, vv = scene.u.square().sum(1), scene.v.square().sum(1)
    ulen, vlen = uu.sqrt(), vv.sqrt()
    rects, depths, coords = [], [], []
    for start in range(0, d.shape[0], chunk):
        dd = d[start:start + chunk]
        views = view[start:start + chunk]
        first, last = int(views[0]), int(views[-1])  # rays come grouped by view
        cn, cu, cv = (f[first:first + 1] if first == last else f[views] for f in from_centre)
        # Plane hit c + tt d, and its edge coordinates a, b, without forming hit points.
        denom = dd @ scene.normal.transpose(0, 1)  # (P, Q)
        safe = torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
        tt = -cn / safe
        a = (cu + tt * (dd @ scene.u.transpose(0, 1))) / uu
        b = (cv + tt * (dd @ scene.v.transpose(0, 1))) / vv
        ok = (tt > 1e-6) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1) & (denom.abs() >= 1e-12)
        tt = torch.where(ok, tt, torch.inf)
        depth, rect = tt.min(dim=1)
        found = torch.isfinite(depth)
        rect = torch.where(found, rect, -1)
        pick = rect.clamp_min(0)[:, None]
        coords.append(torch.stack([a.gather(1, pick)[:, 0] * ulen[pick[:, 0]],
                                   b.gather(1, pick)[:, 0] * vlen[pick[:, 0]]], dim=1))
        rects.append(rect)
        depths.append(torch.where(found, depth, torch.zeros_like(depth)))
    return Hits(torch.cat(rects), torch.cat(depths), torch.cat(coords))


def cast_rays(scene: SceneTensors, world_to_camera: Tensor, K: Tensor, xy: Tensor,
              chunk: int | None = None) -> Hits:
    """Return what the rays through pixels ``xy (N, 2)`` of one camera hit (see :func:`trace`)."""
    centre, d = camera_rays(world_to_camera, K, xy)
    return trace(scene, centre, d, chunk=chunk)


def shade(scene: SceneTensors, hits: Hits, time: float | Tensor) -> Tensor:
    """Return colours ``(N, 3)`` of ``hits`` at frame ``time`` (a number, or one per ray
    ``(N,)``), fluids advected; 0 where nothing is hit."""
    rect = hits.rect.clamp_min(0)
    s = hits.s
    if bool(scene.fluid.any()):
        time = torch.as_tensor(time, dtype=s.dtype, device=s.device)
        moving = scene.fluid[rect, None] * time.reshape(-1, 1)
        s = s - moving * scene.velocity(rect, s)
    uv = s * scene.texel_scale[rect, None] + scene.texel_offset[rect]
    color = sample_atlas(scene.atlas, scene.texture[rect], uv) * scene.tint[rect]
    return torch.where(hits.rect[:, None] >= 0, color, torch.zeros_like(color))


def render_views(scene: SceneTensors, world_to_camera: Tensor, K: Tensor,
                 size: tuple[int, int], times: Tensor | list[float],
                 supersample: int = 1, rays_per_batch: int | None = None
                 ) -> tuple[Tensor, Tensor]:
    """Return the ground-truth colours ``(V, 3, H, W)`` and validity ``(V, H, W)`` of ``V``
    views: cameras ``world_to_camera (V, 4, 4)`` and ``K (V, 3, 3)`` at frames ``times (V,)``.

    Each pixel averages ``supersample^2`` rays on a regular sub-pixel grid; it is valid where
    every ray hits a rectangle. The rays of several views are traced together (at most
    ``rays_per_batch``; default 2^22 on a GPU, 2^18 on the CPU), which on a GPU costs little
    more than one view.
    """
    h, w = size
    device = scene.origin.device
    views = world_to_camera.shape[0]
    times = torch.as_tensor(times, dtype=torch.float32, device=device).reshape(views)
    if rays_per_batch is None:
        rays_per_batch = 1 << (22 if world_to_camera.is_cuda else 18)
    offs = (torch.arange(supersample, device=device, dtype=torch.float32) + 0.5) / supersample - 0.5
    oy, ox = torch.meshgrid(offs, offs, indexing="ij")
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    # (S, H*W, 2): every sub-pixel ray of one view.
    xy = torch.stack([xs.reshape(1, -1) + ox.reshape(-1, 1), ys.reshape(1, -1) + oy.reshape(-1, 1)],
                     dim=-1).reshape(-1, 2)
    per_view = xy.shape[0]
    step = max(1, rays_per_batch // per_view)
    colors, valids = [], []
    for first in range(0, views, step):
        idx = range(first, min(first + step, views))
        centres, dirs = zip(*(camera_rays(world_to_camera[i], K[i], xy) for i in idx))
        view = torch.arange(len(idx), device=device).repeat_interleave(per_view)
        hits = trace(scene, torch.stack(centres), torch.cat(dirs), view)
        time = times[first:first + len(idx)].repeat_interleave(per_view)
        color = shade(scene, hits, time).view(len(idx), supersample ** 2, h * w, 3).mean(1)
        valid = (hits.rect >= 0).view(len(idx), supersample ** 2, h * w).all(1)
        colors.append(color.transpose(1, 2).reshape(len(idx), 3, h, w))
        valids.append(valid.view(len(idx), h, w))
    return torch.cat(colors), torch.cat(valids)


def render_view(scene: SceneTensors, world_to_camera: Tensor, K: Tensor, size: tuple[int, int],
                time: float = 0.0, supersample: int = 1) -> tuple[Tensor, Tensor]:
    """Return the ground-truth colour ``(3, H, W)`` and validity ``(H, W)`` of one view."""
    color, valid = render_views(scene, world_to_camera[None], K[None], size, [time], supersample)
    return color[0], valid[0]


def source_geometry(scene: SceneTensors, K: Tensor, size: tuple[int, int]) -> dict[str, Tensor]:
    """Return the source view's exact ``depth (1, H, W)``, ``motion (2, H, W)`` (pixels per
    frame, zero outside the fluid), ``mask (1, H, W)`` (fluid) and ``rect (H, W)``."""
    h, w = size
    device = scene.origin.device
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    xy = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    eye = torch.eye(4, device=device)
    hits = cast_rays(scene, eye, K, xy)
    rect = hits.rect.clamp_min(0)
    fluid = (hits.rect >= 0) & scene.fluid[rect]
    moved = scene.surface_point(rect, hits.s + scene.velocity(rect, hits.s))
    z = moved[:, 2].clamp_min(1e-6)
    target = torch.stack([K[0, 0] * moved[:, 0] / z + K[0, 2],
                          K[1, 1] * moved[:, 1] / z + K[1, 2]], dim=1)
    motion = torch.where(fluid[:, None], target - xy, torch.zeros_like(xy))
    return {"depth": hits.depth.view(1, h, w), "motion": motion.t().reshape(2, h, w),
            "mask": fluid.view(1, h, w), "rect": hits.rect.view(h, w)}


# --------------------------------------------------------------------------------------
# The family of scenes


class _Builder:
    def __init__(self, rng: np.random.Generator, split: str, device=None,
                 photos: tuple[str, ...] = ()):
        self.rng = rng
        self.device = device
        self.split = split
        self.photos = tuple(photos)
        self.rects: list[Rect] = []
        self.textures: list[Tensor] = []
        self.names: list[str] = []
        #: ``(centre x, front z, width)`` of every box, for the floaters.
        self.boxes: list[tuple[float, float, float]] = []

    def texture(self, kind: str) -> int:
        """Add a texture: ``photo`` (a photograph of the split) or a procedural kind."""
        if kind == "photo":
            tex, name = photo_texture(self.split, self.rng, device=self.device,
                                      extra=self.photos)
            name = f"photo:{name}"
        else:
            tex = procedural_texture(kind, self.rng, device=self.device)
            name = f"procedural:{kind}"
        self.textures.append(tex)
        self.names.append(name)
        return len(self.textures) - 1

    def rect(self, name, origin, u, v, texture, metres_per_texture, tint=None, flow=(0.0, 0.0),
             shear=0.0, period=1.0):
        rng = self.rng
        tint = tint if tint is not None else list(rng.uniform(0.85, 1.1, 3))
        self.rects.append(Rect(name, [float(c) for c in origin], [float(c) for c in u],
                               [float(c) for c in v], texture,
                               TEXTURE_SIZE / metres_per_texture,
                               [float(c) for c in rng.uniform(0, TEXTURE_SIZE, 2)],
                               [float(c) for c in tint], [float(c) for c in flow],
                               float(shear), float(period)))

    def box(self, name, centre_x, ground_y, z_front, width, height, depth, texture, scale,
            shade: float = 1.0):
        """Add the five visible faces of an axis-aligned box whose bottom is at ``ground_y``
        (standing on the ground, or hovering), its colours times ``shade``."""
        x0, x1 = centre_x - width / 2, centre_x + width / 2
        y0 = ground_y - height
        z0, z1 = z_front, z_front + depth
        self.boxes.append((float(centre_x), float(z_front), float(width)))
        shade = shade * self.rng.uniform(0.85, 1.1, 3)
        faces = {
            "front": ((x0, y0, z0), (width, 0, 0), (0, height, 0), 1.0),
            "back": ((x1, y0, z1), (-width, 0, 0), (0, height, 0), 0.6),
            "left": ((x0, y0, z1), (0, 0, -depth), (0, height, 0), 0.75),
            "right": ((x1, y0, z0), (0, 0, depth), (0, height, 0), 0.75),
            "top": ((x0, y0, z1), (width, 0, 0), (0, 0, -depth), 1.15),
        }
        for face, (o, u, v, light) in faces.items():
            self.rect(f"{name}.{face}", o, u, v, texture, scale, list(shade * light))


#: :func:`relight`'s gains: the sky's and each fluid's (darker only), and each box's.
RELIGHT_BACKGROUND = (0.3, 1.0)
RELIGHT_BOX = (0.6, 1.4)


def relight(scene: Scene, rng: np.random.Generator) -> Scene:
    """``scene`` with the sky and each fluid darker (a gain drawn in
    :data:`RELIGHT_BACKGROUND` each) and each box (all its faces alike) darker or brighter
    (:data:`RELIGHT_BOX`); nothing else changes (shapes, textures, motion, geometry).

    In the family as drawn, what a disocclusion reveals is mostly bright sky or water behind
    darker things, so the truth in a frame's holes is brighter than anything filled from
    around them, and a decoder trained on it learns to lighten whatever fills a hole, dark
    objects of a photo included. Relit, what lies behind is as often darker as brighter.
    """
    gains: dict[str, float] = {}
    rects = []
    for r in scene.rects:
        group = r.name.split(".")[0]
        if group not in gains:
            if group in ("sky", "river", "waterfall"):
                gains[group] = float(rng.uniform(*RELIGHT_BACKGROUND))
            elif "." in r.name:  # a box's face: "occluder0.front"
                gains[group] = float(rng.uniform(*RELIGHT_BOX))
            else:
                gains[group] = 1.0
        rects.append(replace(r, tint=[c * gains[group] for c in r.tint]))
    return replace(scene, rects=rects)


def sample_scene(seed: int, split: str, size: tuple[int, int], device=None,
                 floaters: int = 0, photos: tuple[str, ...] = ()) -> Scene:
    """Return the scene of generator seed ``seed`` (see :func:`scene_seed`), normalised.

    The layout is drawn on the CPU; textures are made, and the depth normalisation is
    ray-cast, on ``device``. The same seed gives the same scene on any device (up to
    floating-point rounding).

    ``floaters``: that many small boxes hovering just behind a box's silhouette, each at a
    depth between that box and what lies behind it, often dark (a hand, a bird, a branch):
    in the layered depth image they make small islands of a layer of their own between a near
    and a far one, which the rest of the family rarely does (none where the scene has no
    box). They are drawn after everything else, so the scene of the same seed is otherwise
    unchanged.

    ``photos``: image files drawn alongside the split's own photographs
    (:func:`~cinemagraph.data.textures.photo_texture`; train split only). With any, the
    scenes of a seed differ from those without.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    f = float(max(h, w))
    b = _Builder(rng, split, device, photos)
    height = rng.uniform(1.2, 2.5)  # camera height above the ground (ground at y = +height)
    slope = rng.uniform(-0.04, 0.06)  # ground y change per unit z (positive: rising away)
    far = 60.0

    def ground_y(z):
        return height - slope * z

    # Sky backdrop, far and big; clouds drift on it in some scenes.
    clouds = rng.random() < 0.4
    sky_tex = b.texture("clouds" if clouds else "sky")
    sky_w, sky_top = 4.0 * far, -2.0 * far
    sky_bottom = ground_y(far) + 5.0
    cloud_flow = {}
    if clouds:
        speed = rng.uniform(0.3, 1.2) * far / f * rng.choice([-1.0, 1.0])
        cloud_flow = dict(flow=[speed, 0.0], shear=rng.uniform(0.0, 0.4),
                          period=rng.uniform(0.2, 0.5) * far)
    b.rect("sky", (-sky_w / 2, sky_top, far), (sky_w, 0, 0), (0, sky_bottom - sky_top, 0),
           sky_tex, rng.uniform(0.15, 0.3) * far if clouds
           else max(sky_w, sky_bottom - sky_top) / rng.uniform(0.8, 1.5),
           tint=[1.0, 1.0, 1.0], **cloud_flow)
    # Ground.
    ground_tex = b.texture("photo" if rng.random() < 0.7 else rng.choice(["rock", "foliage"]))
    z_start = 0.3
    g_w = 3.0 * far
    b.rect("ground", (-g_w / 2, ground_y(z_start), z_start), (g_w, 0, 0),
           (0, ground_y(far - 1.0) - ground_y(z_start), far - 1.0 - z_start), ground_tex,
           rng.uniform(2.0, 6.0))
    # Far cliffs or buildings.
    for i in range(int(rng.integers(1, 4))):
        z = rng.uniform(0.35, 0.8) * far
        width = rng.uniform(0.2, 0.6) * z
        top = rng.uniform(0.08, 0.3) * z
        x = rng.uniform(-0.5, 0.5) * z
        tex = b.texture("photo" if rng.random() < 0.6 else "rock")
        b.rect(f"cliff{i}", (x - width / 2, ground_y(z) - top, z), (width, 0, 0),
               (0, top, 0), tex, rng.uniform(4.0, 15.0))
    # Fluids in front of the backdrop, each with an occluding box in front of it.
    kinds = ["river", "waterfall"]
    chosen = [k for k in kinds if rng.random() < 0.6]
    if not chosen and not clouds:
        chosen = [kinds[int(rng.integers(2))]]
    fluid_boxes = []
    for kind in chosen:
        if kind == "river":
            z0 = rng.uniform(4.0, 8.0)
            z1 = z0 + rng.uniform(8.0, 25.0)
            x0 = rng.uniform(-0.4, 0.1) * z0
            width = rng.uniform(0.3, 0.8) * z0
            zc = 0.5 * (z0 + z1)
            px = rng.uniform(0.6, 2.0)  # image speed, pixels per frame, at the middle depth
            along = rng.random() < 0.6  # flowing towards the camera, else sideways
            # Image speed of ground motion: f v / z sideways, f height v / z^2 along z.
            if along:
                flow = [0.0, -px * zc * zc / (f * ground_y(zc))]
            else:
                flow = [px * zc / f * rng.choice([-1.0, 1.0]), 0.0]
            tex = b.texture("water")
            lift = 1e-3 * z0
            b.rect("river", (x0, ground_y(z0) - lift, z0), (width, 0, 0),
                   (0, ground_y(z1) - ground_y(z0), z1 - z0), tex, rng.uniform(2.0, 5.0),
                   tint=[1.0, 1.0, 1.0], flow=flow, shear=rng.uniform(0.1, 0.5),
                   period=2.0 * width if along else 2.0 * (z1 - z0))
            fluid_boxes.append((x0 + width * rng.uniform(0.2, 0.8), z0))
        else:
            z = rng.uniform(8.0, 18.0)
            width = rng.uniform(0.1, 0.25) * z
            top = rng.uniform(0.15, 0.4) * z
            x = rng.uniform(-0.3, 0.3) * z
            cliff = b.texture("photo" if rng.random() < 0.5 else "rock")
            b.rect("waterfall_cliff", (x - 2.5 * width, ground_y(z) - top, z + 0.05 * z),
                   (5.0 * width, 0, 0), (0, top + 1.0, 0), cliff, rng.uniform(3.0, 8.0))
            tex = b.texture("waterfall")
            px = rng.uniform(1.0, 3.0)
            b.rect("waterfall", (x - width / 2, ground_y(z) - top, z), (width, 0, 0),
                   (0, top, 0), tex, rng.uniform(1.5, 4.0), tint=[1.0, 1.0, 1.0],
                   flow=[0.0, px * z / f], shear=rng.uniform(0.1, 0.5), period=width)
            fluid_boxes.append((x + width * rng.uniform(-0.3, 0.3), z))
    # Occluders in front of the fluids, then a few more boxes.
    for i, (x, z) in enumerate(fluid_boxes):
        zf = rng.uniform(0.4, 0.7) * z
        size_ = rng.uniform(0.06, 0.15) * zf
        tex = b.texture("photo" if rng.random() < 0.5 else "rock")
        b.box(f"occluder{i}", x, ground_y(zf), zf, size_ * rng.uniform(1.0, 2.5),
              size_ * rng.uniform(0.6, 1.5), size_ * rng.uniform(0.5, 1.5), tex,
              rng.uniform(1.0, 3.0))
    for i in range(int(rng.integers(0, 4))):
        z = rng.uniform(3.0, 25.0)
        s_ = rng.uniform(0.05, 0.15) * z
        tex = b.texture("photo" if rng.random() < 0.5 else "rock")
        b.box(f"rock{i}", rng.uniform(-0.6, 0.6) * z, ground_y(z), z, s_ * rng.uniform(0.8, 2.0),
              s_ * rng.uniform(0.5, 1.5), s_, tex, rng.uniform(1.0, 3.0))
    boxes = list(b.boxes)
    for i in range(floaters if boxes else 0):
        x_box, z_box, w_box = boxes[int(rng.integers(len(boxes)))]
        z = z_box * rng.uniform(1.15, 2.0)
        s_ = rng.uniform(0.02, 0.08) * z  # 2-8 % of the focal length on the image
        # The centre's image column lies at the box's left or right silhouette, mostly
        # outside it; its bottom anywhere from the ground up to the box's width above it.
        side = rng.choice([-1.0, 1.0])
        column = x_box / z_box + side * (w_box / (2.0 * z_box) + rng.uniform(-0.3, 0.8) * s_ / z)
        bottom = ground_y(z) - rng.uniform(0.0, 1.0) * w_box * z / z_box
        tex = b.texture("photo" if rng.random() < 0.5 else rng.choice(["rock", "foliage"]))
        b.box(f"floater{i}", column * z, bottom, z, s_ * rng.uniform(0.6, 1.6),
              s_ * rng.uniform(0.6, 1.6), s_ * rng.uniform(0.3, 1.0), tex, rng.uniform(0.3, 1.0),
              shade=rng.uniform(0.15, 1.0))
    atlas = torch.cat(b.textures, dim=2)
    scene = Scene(b.rects, atlas, b.names, (h, w), seed, split)
    # Normalise: the 2nd percentile of the source depth becomes 1.
    scene.geometry = source_geometry(scene.tensors(device), scene.K.to(device), (h, w))
    depth = scene.geometry["depth"].flatten()
    near = float(torch.quantile(depth[depth > 0], 0.02))
    return scene.scaled(1.0 / near)
