"""A contact sheet of one photo along several camera paths: first, middle and last frame.

    python -m cinemagraph.eval.path_sheet PHOTO OUT.png [--cameras circle,swing,side,zoom-in]
        [--frames 30] [--max-size 448] [--decoder auto|learned|builtin] [--no-reframe]
        [--overwrite]

``PHOTO`` is a photo file, a photo folder in the layout of the project's sample photos
(``image.jpg`` or ``image.png``, optionally ``image.json``, the moving region and hints in
labelme format, and ``depth.png``, a depth map), or ``example:NAME`` for an example that
ships with the project (``example:rocket``). One row per camera path, the first, middle
and last frame side by side, the path's name in the corner: what to look at for mirrored
borders, bent verticals and tears at the mask's edge. The photo is prepared once
(:func:`cinemagraph.prepare`), as the render command prepares it, and rendered along each
path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError


def photo_inputs(photo: str, work: Path) -> tuple[Path, Path | None, Path | None]:
    """``(image file, hints file, depth file)`` of ``photo`` (module docstring); an example's
    photo is written into ``work``."""
    from .photos import DEPTH_FILE, HINTS_FILE, photo_image

    if photo.startswith("example:"):
        import imageio.v3 as iio

        from ..examples import EXAMPLES, example_photo

        name = photo.split(":", 1)[1]
        if name not in EXAMPLES:
            raise UserError(f"unknown example '{name}': use one of {', '.join(EXAMPLES)}")
        array, hints = example_photo(name)
        image = work / f"{name}.png"
        iio.imwrite(image, array)
        return image, hints, None
    path = Path(photo)
    if path.is_dir():
        hints, depth = path / HINTS_FILE, path / DEPTH_FILE
        return (photo_image(path), hints if hints.is_file() else None,
                depth if depth.is_file() else None)
    if not path.is_file():
        raise UserError(f"photo '{photo}' does not exist: give a photo file, a photo folder "
                        "or example:NAME")
    return path, None, None


def path_sheet(photo: str, cameras: list[str], frames: int = 30, max_size: int = 448,
               decoder: str = "auto", reframe: bool = True, device: str = "auto") -> np.ndarray:
    """The sheet ``(rows * H, 3 * W, 3)`` uint8 of ``photo`` (module docstring)."""
    import tempfile

    from ..api import RenderOptions, prepare
    from ..media.image import to_uint8
    from ..motion import read_hints_json, read_labelme

    with tempfile.TemporaryDirectory() as work:
        image, hints, depth = photo_inputs(photo, Path(work))
        options = RenderOptions(max_size=max_size, decoder=decoder, reframe=reframe,
                                device=device, depth=depth)
        scene = prepare(image, options)
    if hints is not None:
        reader = read_labelme if hints.name == "image.json" else read_hints_json
        scene = scene.with_motion(reader(hints, scene.original_size))
    rows = []
    for camera in cameras:
        shots = [to_uint8(frame)[..., :3] for frame in scene.render(camera, frames)]
        row = np.concatenate([shots[0], shots[len(shots) // 2], shots[-1]], axis=1)
        rows.append(_label(row, camera))
    return np.concatenate(rows, axis=0)


def _label(row: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    picture = Image.fromarray(row)
    draw = ImageDraw.Draw(picture)
    box = draw.textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(picture)


def main(argv: list[str] | None = None) -> int:
    import logging

    p = argparse.ArgumentParser(prog="python -m cinemagraph.eval.path_sheet",
                                description=__doc__.splitlines()[0])
    p.add_argument("photo", help="a photo file, a photo folder, or example:NAME")
    p.add_argument("out", type=Path, help="the sheet (.png or .jpg)")
    p.add_argument("--cameras", default="circle,swing,side,zoom-in")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--max-size", type=int, default=448)
    p.add_argument("--decoder", default="auto", choices=["auto", "learned", "builtin"])
    p.add_argument("--no-reframe", action="store_true", help="render the paths as given")
    p.add_argument("--device", default="auto")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.out.exists() and not args.overwrite:
            raise UserError(f"'{args.out}' exists: pass --overwrite to replace it")
        if args.frames < 2:
            raise UserError(f"--frames {args.frames}: give at least 2 frames")
        sheet = path_sheet(args.photo, args.cameras.split(","), args.frames, args.max_size,
                           args.decoder, not args.no_reframe, args.device)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import imageio.v3 as iio

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".partial" + args.out.suffix)
    iio.imwrite(tmp, sheet)
    tmp.replace(args.out)
    print(f"wrote '{args.out}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
