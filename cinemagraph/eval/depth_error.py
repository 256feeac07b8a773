"""The built-in depth prior against the exact depth of synthetic scenes.

    python -m cinemagraph.eval.depth_error DATA [--split val] [--scenes N] [--csv OUT.csv]
        [--overwrite]

For each scene (written by :mod:`cinemagraph.data.synthetic`), the scale-invariant error
of the prior's depth ``d`` against the exact depth ``g``: the standard deviation of
``log d - log g`` over the pixels (Eigen et al. 2014, with the scale term fully removed),
over the pixels that are not sky (the scenes' backdrop, within 0.1 % of the farthest
depth) and over all pixels. Prints the means over scenes; ``--csv`` writes one row per
scene, to compare two versions paired by scene.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError


def scale_invariant_error(depth: np.ndarray, exact: np.ndarray) -> float:
    """The standard deviation of ``log depth - log exact`` over the given pixels."""
    d = np.log(depth) - np.log(exact)
    return float(d.std())


def scene_errors(folder: Path, estimator) -> dict:
    """``{"scene", "si_not_sky", "si_all", "sky_share"}`` of one scene folder."""
    from .data import load_photo

    try:
        image, exact = load_photo(folder)
    except (OSError, ValueError) as e:
        raise UserError(f"scene '{folder}' cannot be read ({e}): write it again with "
                        "python -m cinemagraph.data.synthetic") from None
    exact = exact[0, 0].double().numpy()
    if exact.shape != tuple(image.shape[-2:]) or not np.all(np.isfinite(exact) & (exact > 0)):
        raise UserError(f"scene '{folder}': depth.npy is not a positive depth of the "
                        "image's size; write the scene again")
    depth = estimator(image)[0, 0].numpy()
    sky = exact >= 0.999 * exact.max()
    return {"scene": folder.name, "si_not_sky": scale_invariant_error(depth[~sky], exact[~sky]),
            "si_all": scale_invariant_error(depth, exact), "sky_share": float(sky.mean())}


def main(argv: list[str] | None = None) -> int:
    from ..depth import GroundPlanePrior
    from .data import scene_folders

    p = argparse.ArgumentParser(prog="python -m cinemagraph.eval.depth_error",
                                description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="a synthetic dataset, one of its splits, or a scene")
    p.add_argument("--split", default="val")
    p.add_argument("--scenes", type=int, default=0, help="the first N scenes (0: all)")
    p.add_argument("--csv", type=Path, help="one row per scene")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.scenes < 0:
            raise UserError(f"--scenes {args.scenes}: give a count, or 0 for all")
        if args.csv is not None:
            if args.csv.exists() and not args.overwrite:
                raise UserError(f"'{args.csv}' exists: pass --overwrite to replace it")
            if args.csv.is_dir() or not args.csv.parent.is_dir():
                raise UserError(f"--csv '{args.csv}': give a file in a folder that exists")
        folders = scene_folders(args.data, args.split)[: args.scenes or None]
        prior = GroundPlanePrior()
        rows = [scene_errors(folder, prior) for folder in folders]
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key in ("si_not_sky", "si_all"):
        values = np.array([row[key] for row in rows])
        se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        print(f"{key}: {values.mean():.4f} (SE {se:.4f}, {len(values)} scenes)")
    if args.csv is not None:
        partial = args.csv.with_name(args.csv.name + ".partial")
        with partial.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        partial.replace(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
