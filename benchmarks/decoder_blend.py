"""Score blends of two decoders' frames on the comparison's scenes.

    python benchmarks/decoder_blend.py DATA A B [--weights 0.2,0.5] [--split val]
        [--cameras zoom-in,circle] [--scenes N] [--device cpu] [--out FILE.csv]

``A`` and ``B`` are weight files of the feature network + decoder (the comparison's
``ours-learned``), or ``builtin`` for the built-in decoder (``ours``). Every scene of ``DATA``
is rendered once with each, and the frames ``(1 - w) * A + w * B`` are scored for every ``w``
of ``--weights`` (clipped to [0, 1]; a ``w`` outside [0, 1] extrapolates), the way
:mod:`cinemagraph.eval.compare` scores a method: PSNR of each scene's mean squared error over
its frames and paths, SSIM averaged, both averaged over the scenes. Two uses:

- an output ensemble of two weight files (``w`` between 0 and 1): what averaging two
  networks' frames would give before shipping both;
- the correction's strength of one file (``A = builtin``, ``B`` the file, ``w`` near 1): the
  built-in frame is the composite that a residual decoder corrects, so ``w`` scales the
  correction.

Prints one row per ``w`` (the built-in decoder's row first, for the gain) and the machine and
library versions that computed them, and writes the per-scene rows as CSV to ``--out`` (each with
that line, ``computed_on``). Choose on the validation split (``--split val``), not on
the test scenes.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from cinemagraph.device import select_device
from cinemagraph.errors import UserError
from cinemagraph.eval import metrics
from cinemagraph.eval.compare import environment
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import METHODS, MethodInput
from cinemagraph.motion.field import MotionField


def render(which: str, inp_args: tuple) -> torch.Tensor:
    """The frames of ``which`` (``builtin`` or a weight file) for one scene and path."""
    if which == "builtin":
        return METHODS["ours"](MethodInput(*inp_args, None)).cpu()
    return METHODS["ours-learned"](MethodInput(*inp_args, Path(which))).cpu()


def blend_scores(data: Path, a: str, b: str, weights: list[float], split: str | None,
                 cameras: list[str] | None, scenes: int, device: torch.device) -> list[dict]:
    """Per-scene PSNR and SSIM of the built-in decoder and of every blend of ``a`` and ``b``."""
    from tqdm import tqdm

    rows = []
    folders = scene_folders(data, split)[: scenes or None]
    for folder in tqdm(folders, desc="scenes", unit="scene"):
        scene = load_scene(folder, cameras)
        motion = MotionField(scene.flow.to(device), scene.mask.to(device))
        errors: dict[str, list] = {}
        similarity: dict[str, list] = {}
        for name, path in scene.paths.items():
            args = (scene.image.to(device), scene.depth.to(device), motion, path,
                    scene.K.to(device))
            with torch.no_grad():
                frames = {"builtin": render("builtin", args)}
                first = frames["builtin"] if a == "builtin" else render(a, args)
                second = frames["builtin"] if b == "builtin" else render(b, args)
            for w in weights:
                frames[f"{w:g}"] = ((1.0 - w) * first + w * second).clamp(0, 1)
            target, valid = scene.frames[name], scene.valid[name]
            for key, video in frames.items():
                for t in range(video.shape[0]):
                    errors.setdefault(key, []).append(metrics.mse(video[t], target[t], valid[t]))
                    similarity.setdefault(key, []).append(
                        metrics.ssim(video[t], target[t], valid[t]))
        for key in errors:
            rows.append({"scene": scene.name, "blend": key,
                         "psnr": metrics.psnr_of_mse(errors[key]),
                         "ssim": metrics.mean(similarity[key])})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("a", help="weight file, or 'builtin'")
    parser.add_argument("b", help="weight file, or 'builtin'")
    parser.add_argument("--weights", default="0.2,0.5", help="blend weights of B, comma-separated")
    parser.add_argument("--split", default=None)
    parser.add_argument("--cameras", default="zoom-in,circle")
    parser.add_argument("--scenes", type=int, default=0, help="the first N scenes (0: all)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    for given in (args.a, args.b):
        if given != "builtin" and not Path(given).is_file():
            print(f"error: '{given}' is not a weight file: give a *.safetensors file or "
                  "'builtin'", file=sys.stderr)
            return 2
    try:
        weights = [float(w) for w in args.weights.split(",")]
    except ValueError:
        print(f"error: --weights '{args.weights}': give numbers such as 0.2,0.5", file=sys.stderr)
        return 2
    if args.out is not None and args.out.exists():
        print(f"error: '{args.out}' exists: give another --out", file=sys.stderr)
        return 2
    try:
        device = select_device(args.device)
        rows = blend_scores(args.data, args.a, args.b, weights, args.split,
                            args.cameras.split(",") if args.cameras else None, args.scenes, device)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = list(dict.fromkeys(r["blend"] for r in rows))
    print(f"A = {args.a}\nB = {args.b}\n| blend (weight of B) | PSNR | gain (dB) | SSIM |\n|---|---|---|---|")
    base = metrics.mean(r["psnr"] for r in rows if r["blend"] == "builtin")
    for key in keys:
        mine = [r for r in rows if r["blend"] == key]
        psnr = metrics.mean(r["psnr"] for r in mine)
        print(f"| {key} | {psnr:.4f} | {psnr - base:+.4f} | "
              f"{metrics.mean(r['ssim'] for r in mine):.4f} |")
    computed_on = environment(device)
    print(f"\nComputed on: {computed_on}.")
    if args.out is not None:
        tmp = args.out.with_name(args.out.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["scene", "blend", "psnr", "ssim",
                                                   "computed_on"])
            writer.writeheader()
            writer.writerows({**r, "computed_on": computed_on} for r in rows)
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
