"""Before/after contact sheet of the feature network + decoder on real photos.

    python benchmarks/decoder_contact_sheet.py SAMPLES_DIR OUT.png [--weights-dir DIR]
        [--frames 30] [--max-size 512] [--camera zoom-in]

``SAMPLES_DIR`` holds one folder per photo, in the layout of the project's sample photos:
``image.jpg`` or ``image.png``, optionally ``image.json`` (moving region and motion hints, labelme
format), and ``depth.png`` (a depth map). Each photo is rendered twice by the render
command, with ``--decoder builtin`` and ``--decoder learned`` (the weights found in
``--weights-dir``, ``$CINEMAGRAPH_WEIGHTS`` or ``pretrained/``), everything else equal, and
the middle frame (where the forward and backward clouds blend half and half) of each goes
into the sheet: one row per photo, the built-in decoder left, the learned one right.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def render_middle(folder: Path, decoder: str, args, work: Path) -> np.ndarray:
    import imageio.v3 as iio

    from cinemagraph.cli.render import main as render

    image = next(p for p in (folder / "image.jpg", folder / "image.png") if p.is_file())
    frames = work / f"{folder.name}_{decoder}"
    argv = [str(image), "--camera", args.camera, "--frames", str(args.frames),
            "--max-size", str(args.max_size), "--decoder", decoder, "--save-frames", str(frames),
            "-o", str(work / f"{folder.name}_{decoder}.mp4"), "--quiet", "--device", args.device]
    if (folder / "image.json").is_file():
        argv += ["--motion", str(folder / "image.json")]
    if (folder / "depth.png").is_file():
        argv += ["--depth", str(folder / "depth.png")]
    if args.weights_dir:
        argv += ["--weights-dir", str(args.weights_dir)]
    if render(argv) != 0:
        raise SystemExit(f"rendering '{image}' with --decoder {decoder} failed")
    shots = sorted(frames.glob("*.png"))
    return iio.imread(shots[len(shots) // 2])[..., :3]


def main(argv: list[str] | None = None) -> int:
    import imageio.v3 as iio

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("samples", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--weights-dir", type=Path)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--max-size", type=int, default=512)
    p.add_argument("--camera", default="zoom-in")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    folders = sorted(f for f in args.samples.iterdir() if f.is_dir())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            pair = [render_middle(folder, d, args, Path(tmp)) for d in ("builtin", "learned")]
            gap = np.full((pair[0].shape[0], 8, 3), 255, np.uint8)
            rows.append(np.concatenate([pair[0], gap, pair[1]], 1))
            print(f"{folder.name}: mean |learned - built-in| = "
                  f"{np.abs(pair[1].astype(float) - pair[0]).mean():.2f} / 255", flush=True)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".tmp" + args.out.suffix)
    iio.imwrite(tmp, np.concatenate(rows, 0))
    tmp.replace(args.out)
    print(f"wrote '{args.out}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
