"""Depth or disparity from a file: 8/16-bit PNG or ``.npy``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..media.image import read_array
from .base import repair_depth

log = logging.getLogger(__name__)


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        if not path.exists():
            raise UserError(f"depth file '{path}' does not exist: check the path")
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise UserError(f"depth file '{path}' is not a readable .npy array ({exc}): save it "
                            "with numpy.save") from None
    else:
        array = read_array(path, what="depth file")
    array = np.squeeze(np.asarray(array))
    if array.ndim == 3:  # an RGB picture of a grey depth map
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) < 2:
        raise UserError(f"depth file '{path}' has shape {array.shape}: it must be one 2D map")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise UserError(f"depth file '{path}' holds {array.dtype} values, not numbers")
    return array.astype(np.float64)


def load_depth_file(path: Path, size: tuple[int, int], kind: str = "auto") -> Tensor:
    """Return the map in ``path`` as z-depth ``(1, 1, H, W)`` resized to ``size = (H, W)``.

    ``kind`` is ``"depth"``, ``"disparity"`` (``1 / depth`` up to scale, as MiDaS and DPT
    write) or ``"auto"``: larger values at the bottom of the picture than at the top mean
    disparity, since the bottom of a photo is usually nearer. The decision is logged.
    Disparity zeros mean "infinitely far" and become the farthest depth; invalid values are
    repaired or refused by :func:`repair_depth`.
    """
    path = Path(path)
    values = torch.from_numpy(_read(path)).float()[None, None]
    if kind not in ("auto", "depth", "disparity"):
        raise UserError(f"unknown depth kind '{kind}': use auto, depth or disparity")
    finite = torch.isfinite(values)
    if kind == "auto":
        rows = values.shape[-2]
        band = max(1, rows // 5)

        def band_median(part: Tensor) -> float:
            part = part[torch.isfinite(part)]
            return part.median().item() if part.numel() else float("nan")

        top, bottom = band_median(values[..., :band, :]), band_median(values[..., -band:, :])
        kind = "disparity" if bottom > top else "depth"
        log.info("depth file '%s' read as %s (values are %s at the bottom of the picture); "
                 "pass --depth-kind to override", path.name, kind,
                 "larger" if kind == "disparity" else "smaller")
    if kind == "disparity":
        positive = values[finite & (values > 0)]
        if positive.numel() == 0:
            raise UserError(f"disparity file '{path}' has no positive values: check the file")
        if (values == 0).any():
            log.warning("disparity file '%s': zero disparity read as the farthest depth",
                        path.name)
        floor = positive.min() * 0.5
        values = torch.where(finite & (values == 0), floor, values)
        values = 1.0 / values
    depth = repair_depth(values, source=f"depth file '{path.name}'")
    return F.interpolate(depth, size=size, mode="bilinear", align_corners=False)
