"""Textures of the synthetic scenes: crops of real photographs and procedural patterns.

Photographs come from the images that ship inside scikit-image (no download). They are split
once, by name, between the train, the test and the validation (``val``) scenes, so no two
splits share a photograph (:data:`PHOTOS`): choosing on validation scenes then meets
photographs the networks never saw, as the test scenes do. Procedural textures are drawn from
the scene's own random generator, and no two splits share a generator seed
(:func:`cinemagraph.data.scene.scene_seed`), so they never share a procedural texture either.
Training may add photographs of its own (:func:`photo_files`, the train split only): image
files from a folder, drawn alongside the built-in ones.

A texture is ``(3, S, S)`` in ``[0, 1]``. All textures of a scene are packed side by side
into one atlas ``(3, S, T * S)`` so that one bilinear lookup serves every surface; lookups
mirror the texture at its borders (:func:`mirror`), so any texture coordinate is defined
and there is no seam.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Photographs by split. Greyscale ones are tinted at random when used. ``val`` came later
#: (2026-12-02) from what scikit-image still had without a download: weights chosen on
#: training-split scenes had met their photographs in training, and their gains there
#: carried over to the test split at about a tenth.
PHOTOS = {
    "train": ("brick", "grass", "astronaut", "coffee", "chelsea", "rocket", "camera",
              "hubble_deep_field", "immunohistochemistry", "coins"),
    "test": ("gravel", "cat", "stereo_motorcycle", "retina", "moon", "clock"),
    "val": ("page", "text", "cell", "colorwheel", "logo", "microaneurysms"),
}

#: Texture side in texels.
TEXTURE_SIZE = 256
#: Extra photographs are shrunk on loading so that their longer side is at most this many
#: pixels (a texture is a crop of 0.3-0.9 of the shorter side, resized to
#: :data:`TEXTURE_SIZE`, so more resolution would be thrown away).
EXTRA_PHOTO_SIZE = 1024
#: The image files :func:`photo_files` reads.
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@functools.lru_cache(maxsize=None)
def _photo(name: str, device=None) -> tuple[Tensor, bool]:
    """Return photograph ``name`` as ``(3, H, W)`` in ``[0, 1]`` on ``device`` (cached), and
    whether it is greyscale."""
    from skimage import data

    image = getattr(data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image, dtype=np.float32) / 255.0
    grey = image.ndim == 2
    if grey:
        image = np.repeat(image[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).to(device), grey


@functools.lru_cache(maxsize=None)
def _photo_file(path: str, device=None) -> tuple[Tensor, bool]:
    """Return the image file ``path`` as :func:`_photo` returns a photograph (greyscale: a
    file of one channel, or of two, grey and alpha), its longer side shrunk to at most
    :data:`EXTRA_PHOTO_SIZE` (cached; an unreadable file is a user error that names it)."""
    from ..media.image import _to_float, read_array

    image = _to_float(read_array(Path(path), "training photograph"))
    image = image.reshape(*image.shape[:2], -1)
    grey = image.shape[2] <= 2
    image = np.repeat(image[..., :1], 3, axis=2) if grey else image[..., :3]
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    h, w = x.shape[1:]
    scale = EXTRA_PHOTO_SIZE / max(h, w)
    if scale < 1:
        x = F.interpolate(x[None], size=(max(1, round(h * scale)), max(1, round(w * scale))),
                          mode="bilinear", antialias=True, align_corners=False)[0]
    return x.clamp(0, 1).to(device), grey


def photo_files(folder: str | None) -> tuple[str, ...]:
    """The image files directly in ``folder`` (:data:`PHOTO_SUFFIXES`), sorted by name, as
    extra training photographs; none for None. A folder that is missing or holds no image
    is a user error."""
    if not folder:
        return ()
    from ..errors import UserError

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"the folder of training photographs {folder} does not exist: give "
                        "an existing folder, or leave spacetime.data.photos unset")
    files = tuple(str(p) for p in sorted(root.iterdir())
                  if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise UserError(f"the folder of training photographs {folder} holds no image "
                        f"({', '.join(PHOTO_SUFFIXES)}): add some, or leave "
                        "spacetime.data.photos unset")
    return files


def photo_texture(split: str, rng: np.random.Generator, size: int = TEXTURE_SIZE,
                  device=None, extra: tuple[str, ...] = ()) -> tuple[Tensor, str]:
    """Return a random crop of a photograph of ``split``, resized to ``(3, size, size)``,
    and its name. ``extra``: image files (:func:`photo_files`) drawn alongside the split's
    own photographs, each as often as one of them; the train split only, so the test and
    validation scenes never depend on them."""
    if extra and split != "train":
        raise ValueError(f"extra photographs are for the train split, not '{split}'")
    names = PHOTOS[split] + tuple(extra)
    name = names[int(rng.integers(len(names)))]
    dev = None if device is None else torch.device(device)
    if name in PHOTOS[split]:
        image, grey = _photo(name, dev)
    else:
        image, grey = _photo_file(name, dev)
        name = "file:" + os.path.basename(name)
    h, w = image.shape[1:]
    side = int(rng.uniform(0.3, 0.9) * min(h, w))
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = image[None, :, top:top + side, left:left + side]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)[0]
    if grey:  # tint it
        tint = torch.from_numpy(rng.uniform(0.6, 1.0, 3).astype(np.float32)).to(device)
        crop = crop * tint[:, None, None]
    return crop.clamp(0, 1), name


def fbm(rng: np.random.Generator, size: int = TEXTURE_SIZE, octaves: int = 5,
        base: int = 4, persistence: float = 0.55, stretch: tuple[float, float] = (1.0, 1.0),
        device=None) -> Tensor:
    """Return fractal noise ``(1, size, size)`` in ``[0, 1]``: octaves of smooth random noise.

    ``stretch`` elongates the features along x and y (streaks for waterfalls, say).
    """
    # The coarse noise grids are drawn on the CPU by a generator seeded from ``rng`` and
    # then moved: CUDA's generator draws other numbers for the same seed, and the scenes
    # (and so every score on them) must not depend on the device that made them.
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    out = torch.zeros(1, 1, size, size, device=device)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        cells = base * 2 ** octave
        gh = max(2, int(cells / stretch[1]))
        gw = max(2, int(cells / stretch[0]))
        noise = torch.randn(1, 1, gh, gw, generator=gen).to(device)
        out += amplitude * F.interpolate(noise, size=(size, size), mode="bicubic",
                                         align_corners=False)
        total += amplitude
        amplitude *= persistence
    out = out[0] / total
    # Mean +- 2.5 standard deviations to [0, 1] (about the 1st to 99th percentile of this
    # nearly Gaussian noise, without a sort).
    return ((out - out.mean()) / (5.0 * out.std()) + 0.5).clamp(0, 1)


def _colorize(value: Tensor, dark, light) -> Tensor:
    dark = torch.tensor(dark, dtype=torch.float32, device=value.device)[:, None, None]
    light = torch.tensor(light, dtype=torch.float32, device=value.device)[:, None, None]
    return dark + (light - dark) * value


def procedural_texture(kind: str, rng: np.random.Generator, size: int = TEXTURE_SIZE,
                       device=None) -> Tensor:
    """Return a procedural texture ``(3, size, size)`` of ``kind``.

    Kinds: ``sky`` (a vertical gradient), ``clouds`` (white fBm over blue), ``water``
    (blue-green ripples), ``waterfall`` (white streaks along y), ``rock`` (grey-brown fBm),
    ``foliage`` (green fBm).
    """
    jitter = lambda c: np.clip(np.asarray(c) + rng.uniform(-0.08, 0.08, 3), 0, 1)  # noqa: E731
    if kind == "sky":
        y = torch.linspace(0, 1, size, device=device)[None, :, None].expand(1, size, size)
        return _colorize(y, jitter((0.35, 0.55, 0.85)), jitter((0.75, 0.85, 0.95)))
    if kind == "clouds":
        v = fbm(rng, size, octaves=6, base=3, stretch=(2.0, 1.0), device=device) ** 1.5
        return _colorize(v, jitter((0.4, 0.6, 0.9)), jitter((0.97, 0.97, 0.97)))
    if kind == "water":
        v = fbm(rng, size, octaves=6, base=6, stretch=(1.0, 3.0), device=device)
        return _colorize(v, jitter((0.05, 0.2, 0.3)), jitter((0.5, 0.75, 0.8)))
    if kind == "waterfall":
        v = fbm(rng, size, octaves=6, base=8, stretch=(1.0, 6.0), device=device) ** 0.7
        return _colorize(v, jitter((0.35, 0.45, 0.5)), jitter((0.97, 0.98, 1.0)))
    if kind == "rock":
        v = fbm(rng, size, octaves=6, base=5, device=device)
        return _colorize(v, jitter((0.2, 0.18, 0.15)), jitter((0.65, 0.6, 0.55)))
    if kind == "foliage":
        v = fbm(rng, size, octaves=6, base=10, device=device)
        return _colorize(v, jitter((0.05, 0.15, 0.05)), jitter((0.4, 0.6, 0.25)))
    raise ValueError(f"unknown procedural texture '{kind}'")


def mirror(coord: Tensor, size: int) -> Tensor:
    """Return texel coordinates folded into ``[0, size - 1]`` by mirroring (period 2 size - 2)."""
    period = 2.0 * (size - 1)
    c = torch.remainder(coord, period)
    return torch.where(c > size - 1, period - c, c)


def sample_atlas(atlas: Tensor, texture: Tensor, uv: Tensor) -> Tensor:
    """Return colours ``(N, 3)`` of texture ``texture (N,)`` at texel coordinates ``uv (N, 2)``.

    ``atlas`` is ``(3, S, T * S)``; coordinates are mirrored into each texture, and the
    bilinear lookup never reaches into a neighbouring texture.
    """
    s = atlas.shape[1]
    u = mirror(uv[:, 0], s) + texture.to(uv.dtype) * s
    v = mirror(uv[:, 1], s)
    total_w = atlas.shape[2]
    x0 = u.floor().clamp(max=total_w - 2)
    y0 = v.floor().clamp(max=s - 2)
    fx, fy = (u - x0)[:, None], (v - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    flat = atlas.reshape(3, -1)

    def at(y, x):
        return flat[:, y * total_w + x].t()

    return ((at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy)
            + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy)


__all__ = ["EXTRA_PHOTO_SIZE", "PHOTOS", "TEXTURE_SIZE", "fbm", "mirror", "photo_files",
           "photo_texture", "procedural_texture", "sample_atlas"]

