"""Weight means ("model soups", Wortsman et al., ICML 2022) of the feature network + decoder.

    python -m cinemagraph.train.soup OUT.safetensors WEIGHTS[=W] WEIGHTS[=W] ...
        [--fp32] [--overwrite]

Averages every floating-point parameter and buffer of two or more weight files (ours, or the
official training checkpoint), each with weight ``W`` (default 1; the weights are normalised
to sum to 1). Integer buffers (batch-norm step counters) are taken from the first file. The
mean is only meaningful for weights fine-tuned from the same starting weights (checkpoints of
one run, or runs that start from one file with other data seeds): unrelated weights average
to a broken network. The files must agree in preset, where the correction applies, its band,
crack and fluid widths, the fluid rule and border, the clamp and the refiner (the metadata that
:func:`cinemagraph.models.spacetime.load_spacetime` reads) and every key's shape; otherwise
a one-line error names the first difference.

Writes our safetensors (fp16 unless ``--fp32``), through a temporary name, and never over an
existing file without ``--overwrite``. Its metadata names the ingredients (file name,
SHA-256, weight), so a shipped mean can be traced and made again.

A mean of checkpoints can score like its best ingredient on the validation scenes while
changing real photos less than any of them (``benchmarks/RESULTS.md``, thirteenth session);
choose among means with :mod:`cinemagraph.eval.select` as among checkpoints.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import torch

from ..errors import UserError

log = logging.getLogger(__name__)


def parse_ingredient(text: str) -> tuple[Path, float]:
    """``PATH`` or ``PATH=W`` (the weight after the last '=', so paths may hold '=')."""
    path, sep, weight = text.rpartition("=")
    if not sep:
        return Path(text), 1.0
    try:
        value = float(weight)
    except ValueError:
        # No number after the last '=': the '=' belongs to the path.
        return Path(text), 1.0
    if not value > 0:
        raise UserError(f"'{text}': give each file a weight above 0")
    return Path(path), value


def read_ingredients(out: Path, overwrite: bool, texts: list[str], verb: str
                     ) -> list[tuple[Path, float]]:
    """The files and weights of ``texts`` (:func:`parse_ingredient`) for a command that writes
    ``out``: a one-line error if ``out`` is not a safetensors name, exists (without
    ``overwrite``), or a file is missing (``verb``: what the command does with them)."""
    if out.suffix != ".safetensors":
        raise UserError(f"'{out}': name the output *.safetensors")
    if out.exists() and not overwrite:
        raise UserError(f"'{out}' exists: pass --overwrite or another name")
    ingredients = [parse_ingredient(t) for t in texts]
    for path, _ in ingredients:
        if not path.is_file():
            raise UserError(f"'{path}' is not a file: give weight files to {verb}")
    return ingredients


def write_weights(save, out: Path) -> None:
    """Run ``save()``, which writes ``out``; a full disk or a folder that cannot be written
    is a one-line error."""
    try:
        save()
    except OSError as e:
        raise UserError(f"cannot write '{out}' ({e.strerror or e}): free space or choose "
                        "another folder") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _settings(model) -> tuple:
    from ..models.spacetime import SETTINGS

    return tuple(getattr(model, name) for name in SETTINGS)


def soup(paths: list[Path], weights: list[float] | None = None):
    """The weighted mean of the models in ``paths`` (a :class:`SpaceTimeModel`, eval mode)."""
    from ..models.spacetime import load_spacetime

    if len(paths) < 2:
        raise UserError("give two or more weight files to average")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or not all(w > 0 for w in weights):
        raise UserError("give one weight above 0 for each file")
    total = sum(weights)
    from ..models.spacetime import SpaceTimeModel

    def one(path: Path) -> SpaceTimeModel:
        model = load_spacetime(path)
        if not isinstance(model, SpaceTimeModel):
            raise UserError(f"'{path}' is an output ensemble: average its members' files")
        return model

    first = one(paths[0])
    names = ("preset", "correction", "band width", "crack width", "fluid width", "fluid rule",
             "fluid border", "moved detail", "clamp width", "refiner width")
    state = first.state_dict()
    mixed = {k: v.double() * (weights[0] / total) if v.is_floating_point() else v.clone()
             for k, v in state.items()}
    for path, weight in zip(paths[1:], weights[1:]):
        model = one(path)
        for name, a, b in zip(names, _settings(first), _settings(model)):
            if a != b:
                raise UserError(f"'{path}' has {name} {b}, '{paths[0]}' {a}: average only "
                                "weights of one preset and correction")
        other = model.state_dict()
        for k, v in other.items():
            if v.shape != state[k].shape:
                raise UserError(f"'{path}' holds {k} of shape {tuple(v.shape)}, "
                                f"'{paths[0]}' {tuple(state[k].shape)}")
            if v.is_floating_point():
                mixed[k] += v.double() * (weight / total)
    first.load_state_dict({k: v.to(state[k].dtype) for k, v in mixed.items()}, strict=True)
    return first.eval()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.train.soup",
                                description="Average weight files of the feature network + "
                                            "decoder (a model soup).")
    p.add_argument("out", type=Path, help="the mean's file (.safetensors)")
    p.add_argument("weights", nargs="+", help="weight files, each PATH or PATH=W")
    p.add_argument("--fp32", action="store_true", help="write fp32 (default fp16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..models.spacetime import save_spacetime

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        ingredients = read_ingredients(args.out, args.overwrite, args.weights, "average")
        paths = [p for p, _ in ingredients]
        weights = [w for _, w in ingredients]
        model = soup(paths, weights)
        total = sum(weights)
        meta = {"soup": [{"file": p.name, "sha256": sha256(p), "weight": w / total}
                         for p, w in ingredients]}
        write_weights(lambda: save_spacetime(model, args.out, half=not args.fp32, metadata=meta),
                      args.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote '%s': the mean of %d files (%s), %s", args.out, len(paths),
             ", ".join(f"{p.name} x{w / total:.3g}" for p, w in ingredients),
             "fp32" if args.fp32 else "fp16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
