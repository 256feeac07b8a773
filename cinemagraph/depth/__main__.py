"""``python -m cinemagraph.depth IMAGE -o depth.png [--model dpt_hybrid|dpt_large|prior] [--save-npy]``.

Writes the photo's depth as a 16-bit PNG of normalised inverse depth (near bright, as DPT's
own tool writes it; ``cinemagraph render --depth`` reads it back), and with ``--save-npy``
the z-depth array (float32, near depth 1) beside it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger("cinemagraph.depth")

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(prog="python -m cinemagraph.depth",
                                description="Estimate the depth of a photo.")
    p.add_argument("image", type=Path)
    p.add_argument("-o", "--output", type=Path, help="PNG to write (default IMAGE_STEM_depth.png)")
    p.add_argument("--model", default="dpt_hybrid", choices=["dpt_hybrid", "dpt_large", "prior"],
                   help="dpt_hybrid (the original pipeline's) or dpt_large (each needs its "
                        "weights), or prior (the built-in fallback)")
    p.add_argument("--weights-dir", type=Path, help="folder of official checkpoints")
    p.add_argument("--save-npy", action="store_true", help="also write the depth as .npy")
    p.add_argument("--max-size", type=int, default=1920, help="cap on the long side (0: none)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="DPT's arithmetic (bf16/fp16 for GPUs; fp32 reproduces the original)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run(args) -> None:
    import imageio.v3 as iio

    from ..device import select_device
    from ..media import AtomicOutput, check_output_dir, load_image
    from ..models.zoo import find_weights
    from .base import normalize_depth

    output = args.output or args.image.with_name(f"{args.image.stem}_depth.png")
    check_output_dir(output)
    npy = output.with_suffix(".npy")
    for path in [output] + ([npy] if args.save_npy else []):
        if path.exists() and not args.overwrite:
            raise UserError(f"'{path}' already exists: pass --overwrite to replace it")
    device = select_device(args.device)
    image, _, _ = load_image(args.image, args.max_size or None)
    if args.model != "prior":
        from ..models.zoo import REGISTRY

        weights = find_weights(args.model, args.weights_dir)
        if weights is None:
            file = REGISTRY[args.model].official_file
            raise UserError(f"no DPT weights: put {file} in pretrained/ (cinemagraph download "
                            f"{args.model}), pass --weights-dir, or use --model prior")
        from .dpt import DPTDepth

        import torch

        estimator = DPTDepth(weights, device, getattr(torch, PRECISIONS[args.precision]),
                             model=args.model)
    else:
        from .prior import GroundPlanePrior

        estimator = GroundPlanePrior()
    depth = normalize_depth(estimator(image))[0, 0].cpu().numpy().astype(np.float32)
    log.info("depth: %s", estimator.description)
    disparity = 1.0 / depth
    lo, hi = float(disparity.min()), float(disparity.max())
    picture = np.round(65535.0 * (disparity - lo) / max(hi - lo, 1e-12)).astype(np.uint16)
    with AtomicOutput(output, args.overwrite) as tmp:
        iio.imwrite(tmp, picture, extension=".png")
    if args.save_npy:
        with AtomicOutput(npy, args.overwrite) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, depth)
    log.info("wrote '%s'%s", output, f" and '{npy}'" if args.save_npy else "")


if __name__ == "__main__":
    sys.exit(main())
