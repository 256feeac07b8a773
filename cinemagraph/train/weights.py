"""The weights tool: means and output ensembles of feature network + decoder files.

    python -m cinemagraph.train.weights soup OUT.safetensors WEIGHTS[=W] WEIGHTS[=W] ...
        [--fp32] [--overwrite]
    python -m cinemagraph.train.weights ensemble OUT.safetensors WEIGHTS[=W] WEIGHTS[=W] ...
        [--int8 | --max-mb MB] [--overwrite]
    python -m cinemagraph.train.weights upgrade OLD.safetensors NEW.safetensors [--overwrite]

Each input is a weight file (ours, or for ``soup`` also the official training checkpoint)
with a weight ``W`` (default 1; the weights are normalised to sum to 1). The files must agree
in preset and :class:`~cinemagraph.spacetime.rules.DecodeRules`, or a one-line error names the
first difference.

``soup`` ("model soups", Wortsman et al., ICML 2022) averages every floating-point parameter
and buffer (integer buffers come from the first file); it is only meaningful for weights
fine-tuned from the same start (checkpoints of one run, or runs from one file with other
data seeds): unrelated weights average to a broken network. Written in fp16 unless ``--fp32``.

``ensemble`` writes one file that holds every member (residual presets): the render, the
comparison and the selection load it as one network, and its frames are the members' frames
mixed by the weights (:class:`~cinemagraph.spacetime.ensemble.SpaceTimeEnsemble`), at about
the members' summed cost; the members need not share a start. ``--int8`` stores every weight
of two or more dimensions as int8 with one scale per output channel; ``--max-mb MB`` only the
largest, as many as keep the file within that size; otherwise fp16.

``upgrade`` rewrites a file of ours whose metadata gives its rules in the older form (one
entry per rule: ``correction``, ``band_px``, ``crack_px``, ``fluid_px``, ``fluid_rule``,
``fluid_border``) as :class:`~cinemagraph.spacetime.rules.DecodeRules`, its tensors unchanged;
rules this version no longer applies (another correction than ``band``, the ``between`` and
``detail`` fluid rules, the moved detail, the clamp, a refiner) are a one-line error naming
the field.

The metadata names the inputs (file name, SHA-256, weight), so a shipped file can be traced
and made again. Writes through a temporary name, and never over an existing file without
``--overwrite``. Choose the weights on the validation split (:mod:`cinemagraph.eval.select`
scores a file), not on test.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

from ..errors import UserError
from ..spacetime import (SpaceTimeEnsemble, SpaceTimeModel, load_spacetime, save_ensemble,
                         save_spacetime)

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
    """The files and weights of ``texts`` for a command that writes ``out``: a one-line error
    if ``out`` is not a safetensors name, exists (without ``overwrite``), or a file is
    missing (``verb``: what the command does with them)."""
    if out.suffix != ".safetensors":
        raise UserError(f"'{out}': name the output *.safetensors")
    if out.exists() and not overwrite:
        raise UserError(f"'{out}' exists: pass --overwrite or another name")
    ingredients = [parse_ingredient(t) for t in texts]
    if len(ingredients) < 2:
        raise UserError(f"give two or more weight files to {verb}")
    for path, _ in ingredients:
        if not path.is_file():
            raise UserError(f"'{path}' is not a file: give weight files to {verb}")
    return ingredients


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _single(path: Path, verb: str) -> SpaceTimeModel:
    model = load_spacetime(path)
    if not isinstance(model, SpaceTimeModel):
        raise UserError(f"'{path}' is an output ensemble: {verb} its members' files")
    return model


def _same_settings(first: SpaceTimeModel, model: SpaceTimeModel, path: Path, ref: Path) -> None:
    """A one-line error naming the first setting (the preset, or a decode rule) in which
    ``model`` (of ``path``) differs from ``first`` (of ``ref``)."""
    from dataclasses import fields

    pairs = [("preset", first.preset, model.preset)]
    if first.rules is not None and model.rules is not None:
        pairs += [(f.name, getattr(first.rules, f.name), getattr(model.rules, f.name))
                  for f in fields(first.rules)]
    for name, a, b in pairs:
        if a != b:
            raise UserError(f"'{path}' has {name} {b}, '{ref}' {a}: combine only weights of "
                            "one preset and rules")


def soup(paths: list[Path], weights: list[float] | None = None) -> SpaceTimeModel:
    """The weighted mean of the models in ``paths`` (eval mode)."""
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(paths) < 2 or len(weights) != len(paths) or not all(w > 0 for w in weights):
        raise UserError("give two or more weight files to average, each a weight above 0")
    total = sum(weights)
    first = _single(paths[0], "average")
    state = first.state_dict()
    mixed = {k: v.double() * (weights[0] / total) if v.is_floating_point() else v.clone()
             for k, v in state.items()}
    for path, weight in zip(paths[1:], weights[1:]):
        model = _single(path, "average")
        _same_settings(first, model, path, paths[0])
        for k, v in model.state_dict().items():
            if v.shape != state[k].shape:
                raise UserError(f"'{path}' holds {k} of shape {tuple(v.shape)}, "
                                f"'{paths[0]}' {tuple(state[k].shape)}")
            if v.is_floating_point():
                mixed[k] += v.double() * (weight / total)
    first.load_state_dict({k: v.to(state[k].dtype) for k, v in mixed.items()}, strict=True)
    return first.eval()


def ensemble(paths: list[Path], weights: list[float] | None = None) -> SpaceTimeEnsemble:
    """The output ensemble of the files ``paths``."""
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    members = [_single(path, "ensemble") for path in paths]
    for path, model in zip(paths[1:], members[1:]):
        _same_settings(members[0], model, path, paths[0])
    try:
        return SpaceTimeEnsemble(members, weights).eval()
    except ValueError as e:
        raise UserError(f"cannot ensemble {', '.join(repr(str(p)) for p in paths)}: {e}") from None


#: The older metadata's rule entries (:func:`upgrade`).
OLD_RULE_KEYS = ("correction", "band_px", "crack_px", "fluid_px", "fluid_rule", "fluid_border",
                 "moved_detail", "clamp_px", "refiner")


def upgraded_metadata(meta: dict[str, str], source: str) -> dict[str, str]:
    """``meta`` with the older rule entries replaced by ``decode_rules`` (see the module
    docstring); a one-line error naming a rule this version cannot apply."""
    from ..spacetime.rules import METADATA_KEY, DecodeRules

    if METADATA_KEY in meta or meta.get("preset", "official") == "official":
        raise UserError(f"'{source}' needs no upgrade: its rules are current (or it has none)")
    if meta.get("correction") != "band":
        raise UserError(f"'{source}': correction '{meta.get('correction', 'gate or everywhere')}'"
                        " is retired (only 'band' remains); the file cannot be upgraded")
    for key, off in (("moved_detail", "false"), ("clamp_px", "0"), ("refiner", "0")):
        if meta.get(key, off) != off:
            raise UserError(f"'{source}': {key} {meta[key]} is retired; the file cannot be "
                            "upgraded")
    try:
        band = int(meta.get("band_px", 31))
        rules = DecodeRules(band_px=band, crack_px=int(meta.get("crack_px", band)),
                            fluid_px=int(meta.get("fluid_px", 0)),
                            fluid_rule=meta.get("fluid_rule", "free"),
                            fluid_border=meta.get("fluid_border", "true") == "true")
    except ValueError as e:
        raise UserError(f"'{source}': {e}; the file cannot be upgraded") from None
    kept = {k: v for k, v in meta.items() if k not in OLD_RULE_KEYS}
    return {**kept, **rules.to_metadata()}


def upgrade(old: Path, new: Path) -> None:
    """Write ``old`` as ``new`` with its rules in the current metadata (tensors unchanged)."""
    from safetensors.torch import load_file

    from ..spacetime.weights import read_metadata, write_safetensors

    meta = upgraded_metadata(read_metadata(old), str(old))
    write_safetensors(load_file(str(old)), meta, new)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.train.weights",
                                description="Combine weight files of the feature network + "
                                            "decoder.")
    verbs = p.add_subparsers(dest="verb", required=True)
    for verb, text in (("soup", "average the weights (a model soup)"),
                       ("ensemble", "one file whose frames mix the members' frames")):
        v = verbs.add_parser(verb, help=text, description=text)
        v.add_argument("out", type=Path, help="the file to write (.safetensors)")
        v.add_argument("weights", nargs="+", help="weight files, each PATH or PATH=W")
        v.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
        if verb == "soup":
            v.add_argument("--fp32", action="store_true", help="write fp32 (default fp16)")
        else:
            v.add_argument("--int8", action="store_true",
                               help="store the members' weights as int8 (default fp16)")
            v.add_argument("--max-mb", type=float, metavar="MB",
                               help="store the largest weights as int8, as few as keep the "
                                    "file within MB megabytes (10^6 bytes), the rest fp16")
    v = verbs.add_parser("upgrade", help="rewrite an older file's rules in the current form",
                         description="rewrite an older file's rules in the current form")
    v.add_argument("old", type=Path, help="the older file")
    v.add_argument("out", type=Path, help="the file to write (.safetensors)")
    v.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return p


def _write(args) -> str:
    """Write what ``args`` ask for; return what the log says of it."""
    if args.verb == "upgrade":
        if args.out.suffix != ".safetensors" or not args.old.is_file():
            raise UserError("give an existing weight file and a new *.safetensors name")
        if args.out.exists() and not args.overwrite:
            raise UserError(f"'{args.out}' exists: pass --overwrite or another name")
        upgrade(args.old, args.out)
        return f"'{args.old}' with its rules in the current form"
    if args.verb == "ensemble" and args.int8 and args.max_mb is not None:
        raise UserError("give --int8 (every weight) or --max-mb (the largest weights as int8, "
                        "as the size needs), not both")
    verb = "average" if args.verb == "soup" else "ensemble"
    ingredients = read_ingredients(args.out, args.overwrite, args.weights, verb)
    paths, weights = [p for p, _ in ingredients], [w for _, w in ingredients]
    total = sum(weights)
    record = [{"file": p.name, "sha256": sha256(p), "weight": w / total} for p, w in ingredients]
    names = ", ".join(f"{p.name} x{w / total:.3g}" for p, w in ingredients)
    try:
        if args.verb == "soup":
            model = soup(paths, weights)
            save_spacetime(model, args.out, half=not args.fp32, metadata={"soup": record})
            return f"the mean of {len(paths)} files ({names}), {'fp32' if args.fp32 else 'fp16'}"
        model = ensemble(paths, weights)
        max_bytes = None if args.max_mb is None else int(args.max_mb * 1e6)
        try:
            save_ensemble(model, args.out, int8=args.int8, metadata={"members": record},
                          max_bytes=max_bytes)
        except ValueError as e:
            raise UserError(f"--max-mb {args.max_mb:g}: {e}; give a larger size") from None
    except OSError as e:
        raise UserError(f"cannot write '{args.out}' ({e.strerror or e}): free space or choose "
                        "another folder") from None
    storage = ("int8" if args.int8 else "fp16" if args.max_mb is None
               else f"the largest weights int8 within {args.max_mb:g} MB")
    return f"an output ensemble of {len(paths)} files ({names}), {storage}"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        what = _write(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote '%s': %s", args.out, what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
