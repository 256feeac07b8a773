"""Pick a checkpoint of the feature network + decoder by the comparison's numbers.

    python -m cinemagraph.eval.select WEIGHTS [WEIGHTS ...] --data DIR [--split val]
        [--cameras zoom-in,circle] [--scenes N] [--max-frame0-window W]
        [--photo-box PHOTO_DIR=X0,Y0,X1,Y1 ...] [--max-photo-change S] [--out FILE.csv]

``WEIGHTS`` are weight files (ours ``*.safetensors``, or the official ``model_STEP.pth``) or
folders holding them: a training run's folder (its ``checkpoints/``) or any folder of such
files, taken in step order. Each is scored as the comparison's ``ours-learned`` method
(:mod:`cinemagraph.eval.compare`: the same scenes, paths, metrics and means), and so is the
built-in decoder (``ours``) once, for the gain, given with its standard error over the scenes:
how far the gain itself may move on other scenes of the kind (a gain of 0.99 dB on 6 test
scenes was 0.90 on the split's 30, standard error 0.17). The pick is the highest mean PSNR
(then SSIM) among the weights whose frame 0 worst window (8-bit steps; frame 0 is the photo)
is at most ``--max-frame0-window``, when given.

Choose on a validation set, not on the test scenes that the results are reported on: the
``val`` split's scenes, ``python -m cinemagraph.data.synthetic --out DIR --split val``, whose
photographs neither the training nor the test scenes use (scenes of the training split with a
seed of their own, ``--split train --seed S``, share the training's photographs, and gains
there overstate what the test split gives). ``--split test`` works but is logged as a
warning.

Real photos have no ground truth, but some of their parts must not change: a dark glove
that a decoder trained on bright synthetic skies greys. ``--photo-box PHOTO_DIR=X0,Y0,X1,Y1``
(repeatable; a folder in the sample photos' layout, pixels of the frame rendered at
``--photo-size``; :mod:`cinemagraph.eval.photos`) renders that photo with the built-in decoder
once and with each weight file, along each of ``--photo-cameras``, and measures the box's mean
change in the middle frame (learned minus built-in, per RGB channel, 8-bit steps). The row's
photo change is the largest of these in size; ``--max-photo-change`` leaves out weights
above it, as ``--max-frame0-window`` does. ``--photo-mirror`` measures every box on the photo
mirrored left to right too (:func:`~cinemagraph.eval.photos.mirror_photo`): a second photo for
the same box, with holes of its own; our networks are no mirror-symmetric functions. Whether
the photos look better stays a matter of looking (``python -m cinemagraph.eval.contact_sheet``).

Prints the table (one row per weight file, the pick marked) and writes it as CSV to
``--out`` (not overwritten without ``--overwrite``), the photo boxes' changes included.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
import time
from pathlib import Path

from ..errors import UserError
from .photos import Box, PhotoCheck, parse_box

log = logging.getLogger(__name__)

#: What a folder's weight files are named: ours, and the official training checkpoints.
PATTERNS = ("*.safetensors", "model_*.pth")


def _step(path: Path) -> tuple[int, str]:
    """Sort key: the step of ``step_N`` and ``model_N`` files, then the name; other files
    come first, by name."""
    found = re.fullmatch(r"(?:step|model)_(\d+)", path.stem)
    return (int(found.group(1)) if found else -1, path.name)


def weight_files(inputs: list[str | Path]) -> list[Path]:
    """The weight files that ``inputs`` name: files as given, folders expanded (a training
    run's ``checkpoints/`` included) in step order; each once."""
    files: list[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_file():
            if path.suffix not in (".safetensors", ".pth"):
                raise UserError(f"'{path}' is not a weight file: give *.safetensors (ours) or "
                                "model_STEP.pth (official), or a folder of them")
            found = [path]
        elif path.is_dir():
            folders = [path] + ([path / "checkpoints"] if (path / "checkpoints").is_dir() else [])
            found = sorted({f for d in folders for pattern in PATTERNS for f in d.glob(pattern)},
                           key=_step)
            if not found:
                raise UserError(f"no weight files in '{path}': it needs *.safetensors or "
                                "model_STEP.pth (or a checkpoints/ folder of them)")
        else:
            raise UserError(f"'{path}' does not exist: give weight files or folders of them")
        files += [f for f in found if f not in files]
    return files


def pick(rows: list[dict], max_frame0_window: float | None = None,
         max_photo_change: float | None = None) -> dict | None:
    """The row with the highest PSNR (then SSIM) among those whose frame 0 worst window is at
    most ``max_frame0_window`` and whose photo change is at most ``max_photo_change`` (no
    limit where None); None when no row qualifies."""
    eligible = [r for r in rows
                if (max_frame0_window is None or r["frame0_window"] <= max_frame0_window)
                and (max_photo_change is None or r["photo_change"] <= max_photo_change)]
    return max(eligible, key=lambda r: (r["psnr"], r["ssim"]), default=None)


def gain_se(before: dict[str, float], after: dict[str, float]) -> float:
    """The standard error of the mean PSNR gain over the scenes both score (the per-scene
    differences' sample deviation over the square root of their number; NaN for one scene):
    how far the gain would move with other scenes of the same kind."""
    import numpy as np

    gains = np.array([after[k] - before[k] for k in before if k in after])
    return float(gains.std(ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else float("nan")


def select(cfg, files: list[Path], max_frame0_window: float | None = None,
           progress: bool = True, photos: PhotoCheck | None = None,
           max_photo_change: float | None = None) -> dict:
    """Score the built-in decoder and every file of ``files`` on the scenes of ``cfg`` (an
    :class:`~cinemagraph.config.EvalConfig`), and on ``photos``' boxes where given; return
    ``{"builtin", "rows", "pick"}``."""
    import tempfile

    import numpy as np
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from ..spacetime import load_spacetime
    from .compare import evaluate, summarize

    computed_on = []

    def score(method: str, weights: Path | None) -> tuple[dict, dict[str, float]]:
        run = OmegaConf.merge(cfg, {"methods": [method], "contact_scenes": 0})
        result = evaluate(run, progress=False, weights=weights)
        computed_on.append(result["environment"])
        records = result["records"]
        figures = summarize(records)
        return ({k: figures[k] for k in ("psnr", "ssim", "frame0_window")},
                {r["scene"]: r["psnr"] for r in records})

    for path in files:  # a file that does not load fails here, before any scoring
        load_spacetime(path)
    builtin, base_scenes = score("ours", None)
    rows = []
    with tempfile.TemporaryDirectory() as work, \
            tqdm(files, desc="weights", unit="file", disable=not progress) as bar:
        for path in bar:
            figures, scenes = score("ours-learned", path)
            row = {"weights": str(path), **figures, "gain_se": gain_se(base_scenes, scenes)}
            if photos is not None:
                row["boxes"] = photos.changes(path, Path(work))
                row["photo_change"] = max(float(np.abs(c).max()) for c in row["boxes"].values())
            rows.append(row)
    return {"builtin": builtin, "rows": rows, "environment": computed_on[0],
            "pick": pick(rows, max_frame0_window, max_photo_change)}


def table(result: dict) -> str:
    """The markdown table of :func:`select`'s result, the pick marked."""
    base = result["builtin"]
    photos = any("photo_change" in row for row in result["rows"])
    extra = (" photo change ↓ |", "---|", " |") if photos else ("", "", "")
    lines = ["| weights | PSNR ↑ | gain (dB) ± SE | SSIM ↑ | frame 0 worst window ↓ |" + extra[0]
             + " pick |", "|---|---|---|---|---|" + extra[1] + "---|",
             f"| built-in decoder | {base['psnr']:.2f} | | {base['ssim']:.4f} | "
             f"{base['frame0_window']:.1f} |" + extra[2] + " |"]
    for row in result["rows"]:
        mark = "**picked**" if row is result["pick"] else ""
        change = f" {row['photo_change']:.1f} |" if photos else ""
        lines.append(f"| {row['weights']} | {row['psnr']:.2f} | {row['psnr'] - base['psnr']:+.2f} "
                     f"± {row['gain_se']:.2f} | {row['ssim']:.4f} | {row['frame0_window']:.1f} |"
                     f"{change} {mark} |")
    if result.get("environment"):
        lines += ["", f"Computed on: {result['environment']}."]
    return "\n".join(lines) + "\n"


def save_csv(result: dict, out: Path, overwrite: bool) -> None:
    """Write the rows (the built-in decoder's first, as ``builtin``) to ``out`` by way of a
    temporary name; each names what computed it (``computed_on``)."""
    from .compare import _write

    if out.exists() and not overwrite:
        raise UserError(f"'{out}' exists: pass --overwrite or another --out")
    out.parent.mkdir(parents=True, exist_ok=True)

    boxes = list(dict.fromkeys(k for row in result["rows"] for k in row.get("boxes", {})))
    photo = ["photo_change"] + boxes if boxes else []

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["weights", "psnr", "gain_se", "ssim",
                                                   "frame0_window", *photo, "picked",
                                                   "computed_on"])
            writer.writeheader()
            where = {"computed_on": result.get("environment", "")}
            writer.writerow({"weights": "builtin", **result["builtin"], "picked": 0, **where})
            for row in result["rows"]:
                changes = {k: " ".join(f"{v:.3f}" for v in c)
                           for k, c in row.get("boxes", {}).items()}
                writer.writerow({**{k: v for k, v in row.items() if k != "boxes"}, **changes,
                                 "picked": int(row is result["pick"]), **where})

    _write(out, write)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.eval.select",
                                description="Pick a checkpoint of the feature network + decoder "
                                "by the comparison's numbers on a validation set.")
    p.add_argument("weights", nargs="+", help="weight files or folders of them (a training "
                   "run's folder: its checkpoints/)")
    p.add_argument("--data", required=True,
                   help="validation scenes (python -m cinemagraph.data.synthetic --split val)")
    p.add_argument("--split", default="val", help="split folder to read (default val; where the "
                   "folder has none, every scene under it)")
    p.add_argument("--cameras", help="comma-separated camera paths (default: all present)")
    p.add_argument("--scenes", type=int, help="use at most this many scenes")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--max-frame0-window", type=float,
                   help="leave out weights whose frame 0 worst window exceeds this (8-bit steps)")
    g = p.add_argument_group("real photos (no ground truth: boxes that must not change)")
    g.add_argument("--photo-box", type=_photo_box, action="append", default=[],
                   metavar="PHOTO_DIR=X0,Y0,X1,Y1",
                   help="a box of a photo folder (image.jpg or .png, optionally image.json and "
                   "depth.png) in pixels of the rendered frame; repeatable")
    g.add_argument("--photo-cameras", default="zoom-in,circle",
                   help="camera paths to render the photos along (default zoom-in,circle)")
    g.add_argument("--photo-size", type=int, default=448,
                   help="the photos' longer side in the renders (default 448)")
    g.add_argument("--photo-frames", type=int, default=30, help="frames per render (default 30)")
    g.add_argument("--photo-mirror", action="store_true",
                   help="also render each photo mirrored left to right and measure its boxes "
                   "there, mirrored (a second photo for each box)")
    g.add_argument("--max-photo-change", type=float,
                   help="leave out weights that change any box by more than this (mean of a "
                   "channel, 8-bit steps, middle frame)")
    p.add_argument("--out", type=Path, help="also write the table here as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


def _photo_box(text: str) -> tuple[Path, Box]:
    try:
        name, box = parse_box(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--photo-box {e}") from None
    return Path(name), box


def main(argv: list[str] | None = None) -> int:
    from .compare import configure_logging, load_config

    configure_logging(log)
    args = build_parser().parse_args(argv)
    try:
        files = weight_files(args.weights)
        if args.out is not None and args.out.exists() and not args.overwrite:
            raise UserError(f"'{args.out}' exists: pass --overwrite or another --out")
        flags = argparse.Namespace(data=args.data, split=args.split, depth=None,
                                   scenes=args.scenes, out=None, device=args.device,
                                   methods=None, cameras=args.cameras, overwrite=False,
                                   overrides=[])
        cfg = load_config(flags)
        if cfg.split == "test":
            log.warning("choosing on the test split: its numbers will then flatter the pick; "
                        "choose on validation scenes (--split val)")
        photos = None
        if args.photo_box:
            boxes: dict[Path, list[Box]] = {}
            for folder, box in args.photo_box:
                boxes.setdefault(folder, []).append(box)
            photos = PhotoCheck(boxes, tuple(c for c in args.photo_cameras.split(",") if c),
                                args.photo_frames, args.photo_size, args.device or "auto",
                                mirrored=args.photo_mirror)
        elif args.max_photo_change is not None or args.photo_mirror:
            flag = "--photo-mirror" if args.photo_mirror else "--max-photo-change"
            raise UserError(f"{flag} needs the boxes to measure: add --photo-box "
                            "PHOTO_DIR=X0,Y0,X1,Y1")
        start = time.perf_counter()
        result = select(cfg, files, args.max_frame0_window, photos=photos,
                        max_photo_change=args.max_photo_change)
        if args.out is not None:
            save_csv(result, args.out, args.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(result))
    chosen = result["pick"]
    if chosen is None:
        print("no weights qualify: each exceeds --max-frame0-window or --max-photo-change",
              file=sys.stderr)
        return 1
    log.info("picked '%s': PSNR %.2f (%+.2f dB over the built-in decoder), SSIM %.4f; %d "
             "file(s) in %.0f s", chosen["weights"], chosen["psnr"],
             chosen["psnr"] - result["builtin"]["psnr"], chosen["ssim"], len(files),
             time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
