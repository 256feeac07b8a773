"""The learned decoder against the built-in one on real photos, where no ground truth exists:
render a photo both ways and measure the change over boxes that must not change.

A photo folder has the layout of the project's sample photos: ``image.jpg`` or ``image.png``,
optionally ``image.json`` (moving region and motion hints, labelme format) and ``depth.png``
(a depth map). Renders go through the library's front door (:func:`cinemagraph.prepare`), as
the render command's do, so they are what a user gets, with everything but the decoder equal.

A box is ``NAME=X0,Y0,X1,Y1``: the photo folder's name and pixels of the rendered frame
(end exclusive), for example astronaut_moon's dark glove at ``--max-size 448`` on a circling
camera, ``astronaut_moon=171,148,203,180``. Its change is the mean of learned minus built-in
per RGB channel in 8-bit steps, in the middle frame (where the forward and backward clouds
blend half and half).

A photo mirrored left to right (:func:`mirror_photo`: the photo, its depth and its hints) is
as good a photo, and a decoder that keeps a dark region of it should keep it on either side;
our networks are no mirror-symmetric functions, and the camera path opens other holes in the
mirrored photo (``PhotoCheck(mirrored=True)`` measures both). Where the layers split follows
small changes of the photo closely (saved again as JPEG, mirrored, the astronaut's glove box
changed by 9 steps in the built-in decoder's own render), so the mirrored photo is written
losslessly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

Box = tuple[int, int, int, int]
#: What a photo folder may hold besides the photo, mirrored with it (:func:`mirror_photo`).
DEPTH_FILE, HINTS_FILE = "depth.png", "image.json"


def parse_box(text: str) -> tuple[str, Box]:
    """``NAME=X0,Y0,X1,Y1`` -> ``(NAME, (x0, y0, x1, y1))``; ValueError naming the format."""
    name, sep, box = text.rpartition("=")  # a folder name may hold "=" itself
    try:
        x0, y0, x1, y1 = (int(v) for v in box.split(","))
    except ValueError:
        x0 = y0 = x1 = y1 = 0
    if not sep or not name or not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise ValueError(f"'{text}': give NAME=X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1, e.g. "
                         "astronaut_moon=170,175,195,200")
    return name, (x0, y0, x1, y1)


def check_fits(box: Box, height: int, width: int) -> None:
    """Raise :class:`UserError` unless ``box`` lies within a ``width`` x ``height`` frame."""
    if box[2] > width or box[3] > height:
        raise UserError(f"box {box} does not fit the {width}x{height} frame: give pixels of "
                        "the rendered frame (see --max-size)")


def box_change(before: np.ndarray, after: np.ndarray, box: Box) -> np.ndarray:
    """Mean of ``after - before`` per channel over ``box`` ``(x0, y0, x1, y1)`` of two
    ``(H, W, 3)`` frames."""
    check_fits(box, *before.shape[:2])
    x0, y0, x1, y1 = box
    return (after[y0:y1, x0:x1].astype(float) - before[y0:y1, x0:x1]).mean((0, 1))


def photo_image(folder: Path) -> Path:
    """The photo of a photo folder."""
    for name in ("image.jpg", "image.png"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"no image.jpg or image.png in '{folder}': a photo folder holds the photo "
                    "and optionally image.json (hints) and depth.png")


def mirror_photo(folder: Path, out: Path) -> Path:
    """Write ``folder``'s photo mirrored left to right into the photo folder ``out`` (made),
    as ``image.png`` (a JPEG written again would lose more), with its depth map and its
    labelme hints (x becomes ``imageWidth - x``; the embedded picture, if any, is dropped)
    mirrored too; return ``out``."""
    import json

    import imageio.v3 as iio

    out.mkdir(parents=True, exist_ok=True)
    picture = iio.imread(photo_image(folder))
    iio.imwrite(out / "image.png", np.ascontiguousarray(picture[:, ::-1]))
    if (folder / DEPTH_FILE).is_file():
        depth = iio.imread(folder / DEPTH_FILE)
        iio.imwrite(out / DEPTH_FILE, np.ascontiguousarray(depth[:, ::-1]))
    if (folder / HINTS_FILE).is_file():
        data = json.loads((folder / HINTS_FILE).read_text())
        width = data.get("imageWidth", picture.shape[1])
        for shape in data.get("shapes", []):
            shape["points"] = [[width - x, y] for x, y in shape["points"]]
        data["imageData"] = None
        (out / HINTS_FILE).write_text(json.dumps(data))
    return out


def mirror_box(box: Box, width: int) -> Box:
    """``box`` of a ``width``-pixel-wide frame, in the mirrored frame's pixels."""
    x0, y0, x1, y1 = box
    return width - x1, y0, width - x0, y1


def render_photo(folder: Path, work: Path, *, camera: str, frames: int, max_size: int,
                 device: str = "auto", weights: Path | None = None,
                 weights_dir: Path | None = None,
                 decoder_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render the photo of ``folder`` as the render command does (:func:`cinemagraph.prepare`)
    with the built-in decoder (``weights`` None) or the learned one of the weight file
    ``weights`` (at ``decoder_size``, None: the default), the other components found as the
    render finds them (``weights_dir`` is its ``--weights-dir``); return its middle frame and
    frame 0, ``(H, W, 3)`` uint8. ``work`` is kept for callers' scratch files."""
    from ..api import RenderOptions, prepare
    from ..media.image import to_uint8
    from ..motion import read_labelme

    image = photo_image(folder)
    options = RenderOptions(max_size=max_size, device=device, weights_dir=weights_dir,
                            decoder="builtin" if weights is None else "learned",
                            decoder_weights=weights)
    if weights is not None and decoder_size is not None:
        options.decoder_size = decoder_size
    if (folder / DEPTH_FILE).is_file():
        options.depth = folder / DEPTH_FILE
    scene = prepare(image, options)
    if (folder / HINTS_FILE).is_file():
        scene = scene.with_motion(read_labelme(folder / HINTS_FILE, scene.original_size))
    shots = [to_uint8(frame) for frame in scene.render(camera, frames)]
    return shots[len(shots) // 2][..., :3], shots[0][..., :3]


@dataclass
class PhotoCheck:
    """Boxes of photos to hold still, rendered along ``cameras``: ``boxes`` maps a photo
    folder to its boxes. ``mirrored``: each photo is also rendered mirrored left to right
    (:func:`mirror_photo`) and its boxes measured there, mirrored."""

    boxes: dict[Path, list[Box]]
    cameras: tuple[str, ...] = ("zoom-in", "circle")
    frames: int = 30
    max_size: int = 448
    device: str = "auto"
    mirrored: bool = False

    def __post_init__(self):
        from ..media.image import load_image

        for folder, boxes in self.boxes.items():  # fail before any scoring, not after
            height, width = load_image(photo_image(folder), self.max_size or None)[0].shape[-2:]
            for box in boxes:
                check_fits(box, height, width)
        self._builtin: dict[tuple[Path, str], np.ndarray] = {}

    def changes(self, weights: Path, work: Path) -> dict[str, np.ndarray]:
        """Every box's change (learned minus built-in, per channel) for ``weights``, keyed
        ``NAME@CAMERA=X0,Y0,X1,Y1`` (``NAME@CAMERA+mirror=...`` on the mirrored photo, the
        box as given); the built-in renders (and mirrored photos, under ``work``) are made
        once and kept."""
        out = {}
        for folder, boxes in self.boxes.items():
            sides = [(folder, "")]
            if self.mirrored:
                mirrored = work / "mirrored" / folder.name
                if not mirrored.is_dir():
                    mirror_photo(folder, mirrored)
                sides.append((mirrored, "+mirror"))
            for camera in self.cameras:
                settings = dict(camera=camera, frames=self.frames, max_size=self.max_size,
                                device=self.device)
                for source, tag in sides:
                    key = (source, camera)
                    if key not in self._builtin:
                        self._builtin[key] = render_photo(source, work, **settings)[0]
                    builtin = self._builtin[key]
                    learned = render_photo(source, work, weights=weights, **settings)[0]
                    for box in boxes:
                        at = mirror_box(box, builtin.shape[1]) if tag else box
                        name = f"{folder.name}@{camera}{tag}={','.join(map(str, box))}"
                        out[name] = box_change(builtin, learned, at)
        return out
