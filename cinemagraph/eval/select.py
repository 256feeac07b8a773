"""Pick a checkpoint of the feature network + decoder by the comparison's numbers.

    python -m cinemagraph.eval.select WEIGHTS [WEIGHTS ...] --data DIR [--split train]
        [--cameras zoom-in,circle] [--scenes N] [--max-frame0-window W] [--out FILE.csv]

``WEIGHTS`` are weight files (ours ``*.safetensors``, or the official ``model_STEP.pth``) or
folders holding them: a training run's folder (its ``checkpoints/``) or any folder of such
files, taken in step order. Each is scored as the comparison's ``ours-learned`` method
(:mod:`cinemagraph.eval.compare`: the same scenes, paths, metrics and means), and so is the
built-in decoder (``ours``) once, for the gain. The pick is the highest mean PSNR (then SSIM)
among the weights whose frame 0 worst window (8-bit steps; frame 0 is the photo) is at most
``--max-frame0-window``, when given.

Choose on a validation set, not on the test scenes that the results are reported on: scenes
made from the training split's photographs with a seed of their own,
``python -m cinemagraph.data.synthetic --out DIR --split train --seed S``, with a seed that
your training runs' ``spacetime.data.seed`` is not. ``--split test`` works but is logged as a
warning.

Prints the table (one row per weight file, the pick marked) and writes it as CSV to
``--out`` (not overwritten without ``--overwrite``). What it does not judge: how the weights
look on real photos (``benchmarks/decoder_contact_sheet.py``).
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


def pick(rows: list[dict], max_frame0_window: float | None = None) -> dict | None:
    """The row with the highest PSNR (then SSIM) among those whose frame 0 worst window is at
    most ``max_frame0_window`` (all rows when None); None when no row qualifies."""
    eligible = [r for r in rows
                if max_frame0_window is None or r["frame0_window"] <= max_frame0_window]
    return max(eligible, key=lambda r: (r["psnr"], r["ssim"]), default=None)


def select(cfg, files: list[Path], max_frame0_window: float | None = None,
           progress: bool = True) -> dict:
    """Score the built-in decoder and every file of ``files`` on the scenes of ``cfg`` (an
    :class:`~cinemagraph.config.EvalConfig`); return ``{"builtin", "rows", "pick"}``."""
    from omegaconf import OmegaConf
    from tqdm import tqdm

    from ..models.spacetime import load_spacetime
    from .compare import evaluate, summarize

    def score(method: str, weights: Path | None) -> dict:
        run = OmegaConf.merge(cfg, {"methods": [method], "contact_scenes": 0})
        figures = summarize(evaluate(run, progress=False, weights=weights)["records"])
        return {k: figures[k] for k in ("psnr", "ssim", "frame0_window")}

    for path in files:  # a file that does not load fails here, before any scoring
        load_spacetime(path)
    builtin = score("ours", None)
    rows = []
    with tqdm(files, desc="weights", unit="file", disable=not progress) as bar:
        for path in bar:
            rows.append({"weights": str(path), **score("ours-learned", path)})
    return {"builtin": builtin, "rows": rows, "pick": pick(rows, max_frame0_window)}


def table(result: dict) -> str:
    """The markdown table of :func:`select`'s result, the pick marked."""
    base = result["builtin"]
    lines = ["| weights | PSNR ↑ | gain (dB) | SSIM ↑ | frame 0 worst window ↓ | pick |",
             "|---|---|---|---|---|---|",
             f"| built-in decoder | {base['psnr']:.2f} | | {base['ssim']:.4f} | "
             f"{base['frame0_window']:.1f} | |"]
    for row in result["rows"]:
        mark = "**picked**" if row is result["pick"] else ""
        lines.append(f"| {row['weights']} | {row['psnr']:.2f} | {row['psnr'] - base['psnr']:+.2f} "
                     f"| {row['ssim']:.4f} | {row['frame0_window']:.1f} | {mark} |")
    return "\n".join(lines) + "\n"


def save_csv(result: dict, out: Path, overwrite: bool) -> None:
    """Write the rows (the built-in decoder's first, as ``builtin``) to ``out`` by way of a
    temporary name."""
    from .compare import _write

    if out.exists() and not overwrite:
        raise UserError(f"'{out}' exists: pass --overwrite or another --out")
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["weights", "psnr", "ssim", "frame0_window",
                                                   "picked"])
            writer.writeheader()
            writer.writerow({"weights": "builtin", **result["builtin"], "picked": 0})
            for row in result["rows"]:
                writer.writerow({**row, "picked": int(row is result["pick"])})

    _write(out, write)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.eval.select",
                                description="Pick a checkpoint of the feature network + decoder "
                                "by the comparison's numbers on a validation set.")
    p.add_argument("weights", nargs="+", help="weight files or folders of them (a training "
                   "run's folder: its checkpoints/)")
    p.add_argument("--data", required=True,
                   help="validation scenes (python -m cinemagraph.data.synthetic --split train "
                   "--seed S)")
    p.add_argument("--split", default="train", help="split folder to read (default train)")
    p.add_argument("--cameras", help="comma-separated camera paths (default: all present)")
    p.add_argument("--scenes", type=int, help="use at most this many scenes")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--max-frame0-window", type=float,
                   help="leave out weights whose frame 0 worst window exceeds this (8-bit steps)")
    p.add_argument("--out", type=Path, help="also write the table here as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


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
                        "choose on validation scenes (--split train, a seed of their own)")
        start = time.perf_counter()
        result = select(cfg, files, args.max_frame0_window)
        if args.out is not None:
            save_csv(result, args.out, args.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(result))
    chosen = result["pick"]
    if chosen is None:
        print(f"no weights qualify: every frame 0 worst window exceeds "
              f"{args.max_frame0_window:.1f}", file=sys.stderr)
        return 1
    log.info("picked '%s': PSNR %.2f (%+.2f dB over the built-in decoder), SSIM %.4f; %d "
             "file(s) in %.0f s", chosen["weights"], chosen["psnr"],
             chosen["psnr"] - result["builtin"]["psnr"], chosen["ssim"], len(files),
             time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
