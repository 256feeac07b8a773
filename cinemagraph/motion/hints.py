"""Motion hints: which region moves and which way, from files or the command line.

Formats (coordinates are pixels of the image file as given, before ``--max-size``):

labelme JSON (the original demo's format)
    Shapes of type ``polygon`` (any label) are the moving region. Shapes of type ``line``
    with a label starting with ``hint`` and exactly two points are hints: the first point
    is where the hint sits, and the motion there is ``(end - start) / HINT_FRAMES`` pixels
    per frame. ``imageWidth`` / ``imageHeight``, when present, must match the image.

hints JSON (this project's format)
    ``{"hints": [{"start": [x, y], "end": [x, y]}, ...],
    "polygons": [[[x, y], [x, y], [x, y], ...], ...]}``; both keys optional; same meaning
    as labelme.

command line
    ``--hint x0,y0,x1,y1`` (repeatable): a hint from ``(x0, y0)`` to ``(x1, y1)``;
    ``--mask FILE``: a picture of the image's size, non-zero where things move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..media.image import read_array

#: A hint arrow shows how far the fluid moves in this many frames (the original's 50).
HINT_FRAMES = 50.0


@dataclass
class MotionHints:
    """Sparse motion hints in source-image pixels.

    ``points``: ``(N, 2)`` where each hint sits; ``vectors``: ``(N, 2)`` pixels per frame;
    ``mask``: ``(1, 1, H, W)`` bool moving region, or ``None`` when none was given.
    """

    points: Tensor = field(default_factory=lambda: torch.zeros(0, 2))
    vectors: Tensor = field(default_factory=lambda: torch.zeros(0, 2))
    mask: Tensor | None = None

    def __len__(self) -> int:
        return self.points.shape[0]

    def scaled(self, scale: float | tuple[float, float], size: tuple[int, int]) -> "MotionHints":
        """Return the hints for the image resized by ``scale`` (one factor, or ``(sy, sx)``)
        and cropped to ``size = (H, W)``."""
        sy, sx = (scale, scale) if isinstance(scale, (int, float)) else scale
        mask = self.mask
        if mask is not None:
            # The output size from rounding, never below ``size``: a scale factor alone
            # floors (720 * 0.35 gives 251 rows where the resized photo has 252).
            out = (max(size[0], round(mask.shape[-2] * sy)), max(size[1], round(mask.shape[-1] * sx)))
            mask = torch.nn.functional.interpolate(mask.float(), size=out, mode="bilinear",
                                                   align_corners=False)
            mask = (mask[..., : size[0], : size[1]] > 0.5)
        factor = torch.tensor([sx, sy], dtype=self.points.dtype)
        return MotionHints(self.points * factor, self.vectors * factor, mask)

    def merged(self, other: "MotionHints") -> "MotionHints":
        """Return these hints together with ``other`` (masks are united)."""
        if self.mask is None or other.mask is None:
            mask = self.mask if other.mask is None else other.mask
        else:
            mask = self.mask | other.mask
        return MotionHints(torch.cat([self.points, other.points]),
                           torch.cat([self.vectors, other.vectors]), mask)


def _check_hints(starts: np.ndarray, ends: np.ndarray, size: tuple[int, int], source: str):
    h, w = size
    for s, e in zip(starts, ends):
        # A hint sits at its start, which must be on the image; its end only gives the
        # direction and may point past the border (water falling out of the picture).
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s))
                and -0.5 <= s[0] <= w - 0.5 and -0.5 <= s[1] <= h - 0.5):
            raise UserError(f"{source}: hint {s.tolist()} -> {e.tolist()} starts outside the "
                            f"{w}x{h} image: move its start inside the image")
        if np.allclose(s, e):
            raise UserError(f"{source}: hint at {s.tolist()} has zero length: give its end a "
                            "different point (the direction the fluid moves)")


def _from_arrows(starts, ends, polygons, size, source) -> MotionHints:
    starts = np.asarray(starts, dtype=np.float64).reshape(-1, 2)
    ends = np.asarray(ends, dtype=np.float64).reshape(-1, 2)
    _check_hints(starts, ends, size, source)
    mask = None
    if polygons:
        from skimage.draw import polygon as fill_polygon

        canvas = np.zeros(size, dtype=bool)
        for poly in polygons:
            rr, cc = fill_polygon(poly[:, 1], poly[:, 0], shape=size)
            canvas[rr, cc] = True
        mask = torch.from_numpy(canvas)[None, None]
    return MotionHints(torch.from_numpy(starts).float(),
                       torch.from_numpy((ends - starts) / HINT_FRAMES).float(), mask)


def _load_json(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} '{path}' does not exist: check the path")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} '{path}' is not valid JSON ({exc}): fix or re-export it") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} '{path}' must hold a JSON object at the top level")
    return data


def _points(value, n: int | None, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{where}: points must be [x, y] number pairs") from None
    if array.ndim != 2 or array.shape[1] != 2 or (n is not None and array.shape[0] != n) \
            or not np.all(np.isfinite(array)):
        want = f"{n} " if n else ""
        raise UserError(f"{where}: expected {want}[x, y] number pairs, got {value!r:.80}")
    return array


def read_labelme(path: Path, size: tuple[int, int]) -> MotionHints:
    """Return the hints of the labelme file ``path`` for an image of ``size = (H, W)``."""
    data = _load_json(path, "labelme file")
    shapes = data.get("shapes")
    if not isinstance(shapes, list):
        raise UserError(f"labelme file '{path}' has no 'shapes' list: export it from labelme")
    h, w = size
    if "imageWidth" in data and "imageHeight" in data and \
            (data["imageWidth"], data["imageHeight"]) != (w, h):
        raise UserError(f"labelme file '{path}' was drawn on a {data['imageWidth']}x"
                        f"{data['imageHeight']} image but the image is {w}x{h}: use the JSON "
                        "made for this image")
    starts, ends, polygons = [], [], []
    for i, shape in enumerate(shapes):
        if not isinstance(shape, dict) or "points" not in shape:
            raise UserError(f"labelme file '{path}': shape {i} has no 'points'")
        kind, label = shape.get("shape_type", "polygon"), str(shape.get("label", ""))
        where = f"labelme file '{path}', shape {i} ('{label}')"
        if kind == "line" and label.startswith("hint"):
            pts = _points(shape["points"], 2, where)
            starts.append(pts[0])
            ends.append(pts[1])
        elif kind == "polygon":
            pts = _points(shape["points"], None, where)
            if len(pts) < 3:
                raise UserError(f"{where}: a polygon needs at least 3 points")
            polygons.append(pts)
    return _from_arrows(starts, ends, polygons, size, f"labelme file '{path}'")


def read_hints_json(path: Path, size: tuple[int, int]) -> MotionHints:
    """Return the hints of this project's hints JSON file (see the module docstring)."""
    data = _load_json(path, "hints file")
    unknown = set(data) - {"hints", "polygons"}
    if unknown:
        raise UserError(f"hints file '{path}' has unknown keys {sorted(unknown)}: use 'hints' "
                        "and 'polygons'")
    starts, ends = [], []
    for i, hint in enumerate(data.get("hints", [])):
        if not isinstance(hint, dict) or set(hint) != {"start", "end"}:
            raise UserError(f"hints file '{path}', hint {i}: expected {{\"start\": [x, y], "
                            "\"end\": [x, y]}")
        pts = _points([hint["start"], hint["end"]], 2, f"hints file '{path}', hint {i}")
        starts.append(pts[0])
        ends.append(pts[1])
    polygons = [_points(p, None, f"hints file '{path}', polygon {i}")
                for i, p in enumerate(data.get("polygons", []))]
    return _from_arrows(starts, ends, polygons, size, f"hints file '{path}'")


def parse_hint_arg(text: str, size: tuple[int, int]) -> MotionHints:
    """Return the hint given on the command line as ``x0,y0,x1,y1``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise UserError(f"--hint '{text}' must be four numbers x0,y0,x1,y1 (from where, to "
                        "where, in pixels)")
    return _from_arrows([values[:2]], [values[2:]], [], size, f"--hint {text}")


def read_mask(path: Path, size: tuple[int, int]) -> Tensor:
    """Return the mask picture ``path`` as a bool ``(1, 1, H, W)``; it must be ``size = (H, W)``."""
    array = read_array(path, what="mask")
    if array.ndim == 3:
        array = array[..., :3].max(axis=-1) if array.shape[-1] in (3, 4) else array[..., 0]
    if array.shape != tuple(size):
        raise UserError(f"mask '{path}' is {array.shape[1]}x{array.shape[0]} but the image is "
                        f"{size[1]}x{size[0]}: give a mask of the image's size")
    return torch.from_numpy(np.asarray(array) > 0)[None, None]
