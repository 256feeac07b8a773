"""Before/after contact sheet of the feature network + decoder on real photos.

    python -m cinemagraph.eval.contact_sheet SAMPLES_DIR OUT.png [--weights-dir DIR]
        [--frames 30] [--max-size 512] [--camera zoom-in] [--decoder-size PX] [--crops CROPS.png]
        [--region NAME=X0,Y0,X1,Y1 ...]

``SAMPLES_DIR`` holds one folder per photo, in the layout of the project's sample photos:
``image.jpg`` or ``image.png``, optionally ``image.json`` (moving region and motion hints, labelme
format), and ``depth.png`` (a depth map). Each photo is rendered twice by the render
command, with ``--decoder builtin`` and ``--decoder learned`` (the weights found in
``--weights-dir``, ``$CINEMAGRAPH_WEIGHTS`` or ``pretrained/``), everything else equal, and
the middle frame (where the forward and backward clouds blend half and half) of each goes
into the sheet: one row per photo, the built-in decoder left, the learned one right.

For each photo it prints the mean change and the largest change in a 32x32 window (mean
over the window of the largest channel difference, in 8-bit steps). ``--crops`` writes, for
each photo, that window's neighbourhood (120x80 pixels, 3x enlarged; built-in left) into a
second picture: where the learned decoder changes the most is where to look first. And it
prints each decoder's PSNR of frame 0 against the photo: the camera paths start at the
source camera and the fluids have not moved yet, so frame 0 should be the photo, the one
frame of a real photo with a ground truth; also the learned frame 0's largest 32x32 window
change against the photo, which finds a local change that the PSNR averages away.

``--region NAME=X0,Y0,X1,Y1`` (pixels of the rendered frame, end exclusive; repeatable) also
prints, for the photo folder ``NAME``, the mean signed change (learned minus built-in, per
RGB channel, 8-bit steps) over that box in the middle frame and in frame 0: a fixed place to
follow from one set of weights to the next, such as astronaut_moon's dark glove at
``--max-size 448``: ``astronaut_moon=170,175,195,200`` in the zoom-in path's middle frame;
in the circle path's, that box holds the glove's lower part and the ground below it, and
``astronaut_moon=171,148,203,180`` most of the glove.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def load_photo(folder: Path, max_size: int) -> np.ndarray:
    """The photo as the render loads it ``(H, W, 3)`` uint8: frame 0 of a path that starts
    at the source camera shows the photo itself (the fluids have not moved yet)."""
    from cinemagraph.eval.photos import photo_image
    from cinemagraph.media.image import load_image

    photo = load_image(photo_image(folder), max_size or None)[0][0].permute(1, 2, 0).numpy()
    return (photo * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def parse_region(text: str) -> tuple[str, tuple[int, int, int, int]]:
    """``NAME=X0,Y0,X1,Y1`` -> ``(NAME, (x0, y0, x1, y1))``."""
    from cinemagraph.eval.photos import parse_box

    try:
        return parse_box(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--region {e}") from None


def psnr(frame: np.ndarray, photo: np.ndarray) -> float:
    mse = np.mean((frame.astype(np.float64) - photo) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def largest_change(before: np.ndarray, after: np.ndarray, window: int = 32) -> tuple[float, int, int]:
    """The largest mean of the per-pixel largest channel difference over ``window``-sized
    windows, and the window's centre ``(y, x)``."""
    from scipy.ndimage import uniform_filter

    diff = np.abs(after.astype(np.float64) - before).max(2)
    smooth = uniform_filter(diff, window, mode="nearest")
    y, x = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return float(smooth[y, x]), int(y), int(x)


def crop_pair(before: np.ndarray, after: np.ndarray, y: int, x: int, size=(80, 120),
              zoom: int = 3) -> np.ndarray:
    """The ``size`` neighbourhood of ``(y, x)`` in both frames side by side, enlarged."""
    h, w = size
    top = max(0, min(y - h // 2, before.shape[0] - h))
    left = max(0, min(x - w // 2, before.shape[1] - w))
    pair = [f[top:top + h, left:left + w] for f in (before, after)]
    gap = np.full((pair[0].shape[0], 4, 3), 255, np.uint8)
    joined = np.concatenate([pair[0], gap, pair[1]], 1)
    return joined.repeat(zoom, 0).repeat(zoom, 1)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, 0)


def _write(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    iio.imwrite(tmp, image)
    tmp.replace(path)
    print(f"wrote '{path}'")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("samples", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--weights-dir", type=Path)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--max-size", type=int, default=512)
    p.add_argument("--camera", default="zoom-in")
    p.add_argument("--device", default="auto")
    p.add_argument("--decoder-size", type=int, help="the render's --decoder-size (default: its own)")
    p.add_argument("--crops", type=Path, help="also write the largest change of each photo here")
    p.add_argument("--region", type=parse_region, action="append", default=[],
                   metavar="NAME=X0,Y0,X1,Y1", help="also print the mean change over this box")
    args = p.parse_args(argv)
    regions = {}
    for name, box in args.region:
        regions.setdefault(name, []).append(box)
    from cinemagraph.errors import UserError
    from cinemagraph.eval.photos import box_change, render_photo
    from cinemagraph.spacetime import find_spacetime

    weights = find_spacetime(args.weights_dir)
    if weights is None:
        raise SystemExit("no feature network + decoder weights in --weights-dir, "
                         "$CINEMAGRAPH_WEIGHTS or pretrained/")
    folders = sorted(f for f in args.samples.iterdir() if f.is_dir())
    settings = dict(camera=args.camera, frames=args.frames, max_size=args.max_size,
                    device=args.device, weights_dir=args.weights_dir)
    rows, crops = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            try:
                renders = [render_photo(folder, Path(tmp), weights=None, **settings),
                           render_photo(folder, Path(tmp), weights=weights,
                                        decoder_size=args.decoder_size, **settings)]
            except UserError as e:
                raise SystemExit(f"error: {e}") from None
            pair = [r[0] for r in renders]
            photo = load_photo(folder, args.max_size)
            first = [psnr(r[1], photo) for r in renders]
            first_worst, fy, fx = largest_change(photo, renders[1][1])
            gap = np.full((pair[0].shape[0], 8, 3), 255, np.uint8)
            rows.append(np.concatenate([pair[0], gap, pair[1]], 1))
            worst, y, x = largest_change(*pair)
            crops.append(crop_pair(*pair, y, x))
            print(f"{folder.name}: mean |learned - built-in| = "
                  f"{np.abs(pair[1].astype(float) - pair[0]).mean():.2f} / 255, largest 32x32 "
                  f"window {worst:.1f} / 255 at (x {x}, y {y}); frame 0 against the photo: "
                  f"built-in {first[0]:.2f} dB, learned {first[1]:.2f} dB (largest window "
                  f"{first_worst:.1f} / 255 at (x {fx}, y {fy}))", flush=True)
            for box in regions.get(folder.name, []):
                middle = box_change(*pair, box)
                start = box_change(renders[0][1], renders[1][1], box)
                print(f"{folder.name}: region {box}: learned - built-in, middle frame "
                      f"{np.round(middle, 1).tolist()}, frame 0 {np.round(start, 1).tolist()}",
                      flush=True)
    _write(args.out, _stack(rows))
    if args.crops:
        _write(args.crops, _stack(crops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
