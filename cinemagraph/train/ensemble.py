"""Output ensembles of the feature network + decoder: two or more networks' frames, mixed.

    python -m cinemagraph.train.ensemble OUT.safetensors WEIGHTS[=W] WEIGHTS[=W] ...
        [--int8 | --max-mb MB] [--overwrite]

Writes one file that holds every member (our residual presets; each a weight file of ours,
weight ``W``, default 1, normalised to sum to 1). The render, the comparison and the selection
load it as they load one network: each member's feature network runs on the layers, one splat
carries all their features, each member's decoder makes its frame, and the frames are mixed by
the weights (:class:`cinemagraph.models.spacetime.SpaceTimeEnsemble`). That is the same frame as
rendering once with each file and mixing, which ``benchmarks/decoder_blend.py`` scores, at
about the members' summed cost. Unlike a mean of weights (:mod:`cinemagraph.train.soup`), the
members need not come from one start; they must agree in preset and rules (the correction, its
widths, the fluid rule and border, the clamp, the refiner), or a one-line error names the first
difference.

``--int8`` stores each member's weights of two or more dimensions as int8 with one scale per
output channel (half the size of fp16; the rest stays fp16). On the validation split this cost
the shipped weights 0.003 dB (``benchmarks/RESULTS.md``, thirty-second session). ``--max-mb MB``
stores only the largest weights as int8, as many as keep the file within that size, largest
first (they save the most bytes and spread their rounding over the most weights), the rest
fp16. Without either, fp16.

The metadata names the members (file name, SHA-256, weight), so a shipped ensemble can be
traced and made again. Writes through a temporary name, and never over an existing file without
``--overwrite``. Choose the weights on the validation split (``decoder_blend.py``), not on test.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import UserError
from .soup import read_ingredients, sha256, write_weights

log = logging.getLogger(__name__)


def ensemble(paths: list[Path], weights: list[float] | None = None):
    """The :class:`~cinemagraph.models.spacetime.SpaceTimeEnsemble` of the files ``paths``."""
    from ..models.spacetime import SpaceTimeEnsemble, SpaceTimeModel, load_spacetime

    if len(paths) < 2:
        raise UserError("give two or more weight files to ensemble")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    members = []
    for path in paths:
        model = load_spacetime(path)
        if not isinstance(model, SpaceTimeModel):
            raise UserError(f"'{path}' is an ensemble already: give its members' files")
        members.append(model)
    try:
        return SpaceTimeEnsemble(members, weights).eval()
    except ValueError as e:
        raise UserError(f"cannot ensemble {', '.join(repr(str(p)) for p in paths)}: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.train.ensemble",
                                description="Put weight files of the feature network + decoder "
                                            "into one output ensemble.")
    p.add_argument("out", type=Path, help="the ensemble's file (.safetensors)")
    p.add_argument("weights", nargs="+", help="weight files, each PATH or PATH=W")
    p.add_argument("--int8", action="store_true",
                   help="store the members' weights as int8 (default fp16)")
    p.add_argument("--max-mb", type=float, metavar="MB",
                   help="store the largest weights as int8, as few as keep the file within MB "
                        "megabytes (10^6 bytes), the rest fp16; not with --int8")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..models.spacetime import save_ensemble

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        members = read_ingredients(args.out, args.overwrite, args.weights, "ensemble")
        model = ensemble([p for p, _ in members], [w for _, w in members])
        meta = {"members": [{"file": p.name, "sha256": sha256(p), "weight": w}
                            for (p, _), w in zip(members, model.weights)]}
        if args.int8 and args.max_mb is not None:
            raise UserError("give --int8 (every weight) or --max-mb (the largest weights as "
                            "int8, as the size needs), not both")
        max_bytes = None if args.max_mb is None else int(args.max_mb * 1e6)

        def save():
            try:
                save_ensemble(model, args.out, int8=args.int8, metadata=meta,
                              max_bytes=max_bytes)
            except ValueError as e:
                raise UserError(f"--max-mb {args.max_mb:g}: {e}; give a larger size") from None

        write_weights(save, args.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote '%s': an output ensemble of %d files (%s), %s", args.out, len(members),
             ", ".join(f"{p.name} x{w:.3g}" for (p, _), w in zip(members, model.weights)),
             "int8" if args.int8 else "fp16" if max_bytes is None else
             f"the largest weights int8 within {args.max_mb:g} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
