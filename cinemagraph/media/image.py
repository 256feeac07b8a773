"""Reading photos into ``(1, 3, H, W)`` tensors and writing pictures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError

log = logging.getLogger(__name__)

#: The long side above which photos are downscaled unless ``max_size`` says otherwise.
DEFAULT_MAX_SIZE = 1920
MIN_SIZE = 8


def _to_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0)


def read_array(path: Path, what: str = "image") -> np.ndarray:
    """Return the pixels of the picture file ``path`` as stored, or raise :class:`UserError`."""
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist: check the path")
    if path.is_dir():
        raise UserError(f"{what} '{path}' is a directory: give an image file")
    try:
        array = np.asarray(iio.imread(path, index=0) if path.suffix.lower() == ".gif"
                           else iio.imread(path))
    except PermissionError:
        raise UserError(f"{what} '{path}' cannot be read (permission denied): check its "
                        "permissions") from None
    except Exception as exc:  # imageio raises many types for non-images
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UserError(f"{what} '{path}' is not a picture that can be read ({reason}): give "
                        "a JPEG or PNG file") from None
    return array


def load_image(path: Path, max_size: int | None = DEFAULT_MAX_SIZE
               ) -> tuple[Tensor, float, tuple[int, int]]:
    """Return the photo at ``path`` as ``(1, 3, H, W)`` RGB in ``[0, 1]``, the scale applied,
    and the file's own size ``(H, W)``.

    Grayscale is repeated to RGB, alpha is composited over white, 16-bit is kept at full
    precision. If the long side exceeds ``max_size`` (``None`` or 0: no limit) the photo is
    downscaled (antialiased) and the scale logged. Odd sizes lose their last row or column,
    since H.264 video needs even sizes. Raises :class:`UserError` for unreadable or tiny files.
    """
    array = read_array(path)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or array.size == 0:
        raise UserError(f"image '{path}' has shape {array.shape}, not a picture: give an RGB, "
                        "RGBA or grayscale image")
    h, w = array.shape[:2]
    if min(h, w) < MIN_SIZE:
        raise UserError(f"image '{path}' is {w}x{h} pixels: at least {MIN_SIZE}x{MIN_SIZE} are "
                        "needed")
    pixels = _to_float(array)
    if pixels.shape[-1] in (2, 4):
        alpha = pixels[..., -1:]
        pixels = pixels[..., :-1] * alpha + (1.0 - alpha)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]
    scale = 1.0
    if max_size and max(h, w) > max_size:
        scale = max_size / max(h, w)
        size = (max(MIN_SIZE, round(h * scale)), max(MIN_SIZE, round(w * scale)))
        image = F.interpolate(image, size=size, mode="bilinear", antialias=True,
                              align_corners=False).clamp(0, 1)
        log.info("downscaled %dx%d to %dx%d (--max-size %d)", w, h, size[1], size[0], max_size)
    hh, ww = image.shape[-2:]
    image = image[..., : hh - hh % 2, : ww - ww % 2].contiguous()
    return image, scale, (h, w)


def to_uint8(image: Tensor) -> np.ndarray:
    """Return ``image (1, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]`` as an ``(H, W, C)`` uint8 array."""
    if image.dim() == 4:
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).byte()
    return array.permute(1, 2, 0).cpu().numpy()


def save_image(path: Path, image: Tensor | np.ndarray) -> None:
    """Write ``image`` (tensor in ``[0, 1]`` or uint8 ``(H, W, C)`` array) to ``path``."""
    import imageio.v3 as iio

    array = image if isinstance(image, np.ndarray) else to_uint8(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    iio.imwrite(path, array)
