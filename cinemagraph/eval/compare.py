"""The baseline comparison: every method on the synthetic ground truth, PSNR/SSIM/LPIPS.

    python -m cinemagraph.eval.compare --data DIR [--split test] [--methods a,b]
        [--cameras circle,zoom-in] [--depth gt|estimated] [--scenes N] [--out results/]
        [key=value ...]

Defaults come from ``conf/eval/compare.yaml`` (schema :class:`cinemagraph.config.EvalConfig`);
flags and ``key=value`` overrides replace them. The protocol is the paper's: every method gets
the ground-truth motion and the same camera paths; it is scored on its ``both`` frames
(animation and camera motion together) against the ray-cast ground truth, on valid pixels
only (:mod:`cinemagraph.eval.metrics`). Depth is the ground truth (``--depth gt``) or the
built-in estimate (``--depth estimated``); the table says which.

Writes to ``--out``: ``table.md`` (mean over scenes of the per-scene scores: PSNR of the
scene's MSE over all frames and paths, SSIM and LPIPS averaged over them; and frame 0's worst
32x32 window error over the paths, :func:`~cinemagraph.eval.metrics.worst_window`, in 8-bit
steps: the paths start at the source camera before anything moves, so frame 0 is the photo,
and a method that changes it there shows it; with the number of scenes), ``per_scene.csv``
and ``contact_sheet.png`` (the middle frame of a few scenes: ground truth, then each
method). Deterministic: the same data give the same numbers on the same device. The table
names the machine and library versions (:func:`environment`): other machines can differ by
hundredths of a dB in a few scenes.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..resources import conf_dir
from . import metrics
from .data import load_scene, scene_folders
from .methods import LABELS, METHODS, STAGE_ABLATIONS, MethodInput

log = logging.getLogger(__name__)

CONF = conf_dir() / "eval" / "compare.yaml"


def load_config(args: argparse.Namespace):
    """Return the composed :class:`~cinemagraph.config.EvalConfig`: schema, yaml, flags,
    ``key=value`` overrides, in that order."""
    from omegaconf import OmegaConf

    from ..config import EvalConfig

    cfg = OmegaConf.structured(EvalConfig)
    if CONF.exists():
        yaml = OmegaConf.load(CONF)
        yaml.pop("defaults", None)
        cfg = OmegaConf.merge(cfg, yaml)
    flags = {k: v for k, v in {
        "data": args.data, "split": args.split, "depth_from": args.depth, "scenes": args.scenes,
        "out": args.out, "device": args.device,
        "methods": args.methods.split(",") if args.methods else None,
        "cameras": args.cameras.split(",") if args.cameras else None,
        "overwrite": True if args.overwrite else None}.items() if v is not None}
    try:
        cfg = OmegaConf.merge(cfg, flags, OmegaConf.from_dotlist(args.overrides))
    except Exception as e:  # omegaconf's validation errors: a wrong key or type
        raise UserError(f"bad setting: {str(e).splitlines()[0]}") from None
    return cfg


def environment(device: torch.device) -> str:
    """One line naming what the scores were computed on: the device
    (:func:`~cinemagraph.device.describe_device`) and the versions of the libraries that
    compute them. Float rounding differs between machines and builds, and a few scenes' splats
    turn on it (``benchmarks/RESULTS.md``, top): the same data and code can
    score hundredths of a dB apart elsewhere."""
    from importlib.metadata import PackageNotFoundError, version

    from ..device import describe_device

    libraries = []
    for name in ("torch", "numpy", "kornia", "scikit-image"):
        try:
            libraries.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            libraries.append(f"{name} (not installed)")
    return f"{describe_device(device)}; {', '.join(libraries)}"


def _default_methods() -> list[str]:
    """Every method but the stage ablations; the learned one only where its weights are
    found."""
    from ..spacetime import find_spacetime

    learned = find_spacetime() is not None
    return [m for m in METHODS if m not in STAGE_ABLATIONS and (m != "ours-learned" or learned)]


def evaluate(cfg, progress: bool = True, weights: Path | None = None) -> dict:
    """Run the comparison that ``cfg`` describes; return rows, per-scene records and samples.
    ``weights``: the learned method's weight file (None: the one found by default)."""
    from ..device import select_device

    device = select_device(None if cfg.device == "auto" else cfg.device)
    methods = list(cfg.methods) or _default_methods()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}: use {', '.join(METHODS)}")
    if cfg.depth_from not in ("gt", "estimated"):
        raise UserError(f"--depth must be gt or estimated, got '{cfg.depth_from}'")
    folders = scene_folders(Path(cfg.data), cfg.split)
    if cfg.scenes:
        folders = folders[: cfg.scenes]
    if "ours-learned" in methods:  # which weights and rules are scored (and none: fail now)
        from .methods import _learned_components

        log.info("ours-learned: %s", _learned_components(device, weights).decoder.description)
    lpips_reason = metrics.lpips_unavailable_reason()
    lpips_model = metrics.LPIPS(device) if lpips_reason is None else None
    if lpips_reason:
        log.info("LPIPS: n/a (%s)", lpips_reason)
    depth_estimator = None
    if cfg.depth_from == "estimated":
        from ..depth import GroundPlanePrior

        depth_estimator = GroundPlanePrior()
    records, contact, cameras = [], [], []
    total = len(folders) * len(methods)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="scenes x methods", unit="run")
    for index, folder in enumerate(folders):
        scene = load_scene(folder, list(cfg.cameras) or None)
        cameras = cameras or list(scene.paths)
        image = scene.image.to(device)
        if depth_estimator is not None:
            from ..depth.base import normalize_depth

            depth = normalize_depth(depth_estimator(scene.image)).to(device)
        else:
            depth = scene.depth.to(device)
        from ..motion.field import MotionField

        motion = MotionField(scene.flow.to(device), scene.mask.to(device))
        shown = {}
        for method in methods:
            scores = {"psnr": [], "ssim": [], "lpips": [], "frame0": []}
            for name, path in scene.paths.items():
                inp = MethodInput(image, depth, motion, path, scene.K.to(device), weights)
                with torch.no_grad():
                    frames = METHODS[method](inp).cpu()
                target, valid = scene.frames[name], scene.valid[name]
                scores["frame0"].append(metrics.worst_window(frames[0], target[0], valid[0]))
                for t in range(frames.shape[0]):
                    scores["psnr"].append(metrics.mse(frames[t], target[t], valid[t]))
                    scores["ssim"].append(metrics.ssim(frames[t], target[t], valid[t]))
                    if lpips_model is not None:
                        scores["lpips"].append(lpips_model(frames[t], target[t], valid[t]))
                if index < cfg.contact_scenes and name == next(iter(scene.paths)):
                    mid = frames.shape[0] // 2
                    shown["ground truth"] = target[mid]
                    shown[method] = frames[mid]
            records.append({"scene": scene.name, "method": method,
                            "psnr": metrics.psnr_of_mse(scores["psnr"]),
                            "ssim": metrics.mean(scores["ssim"]),
                            "lpips": metrics.mean(scores["lpips"]) if scores["lpips"] else math.nan,
                            "frame0_window": max(scores["frame0"])})
            if bar is not None:
                bar.update(1)
        if shown:
            contact.append(shown)
    if bar is not None:
        bar.close()
    return {"records": records, "methods": methods, "scenes": len(folders),
            "contact": contact, "lpips_reason": lpips_reason, "depth": cfg.depth_from,
            "cameras": cameras, "environment": environment(device)}


def summarize(records: list[dict]) -> dict:
    """The table's figures of one method's per-scene ``records``: the means over scenes of
    PSNR, SSIM and LPIPS, and frame 0's worst window over scenes."""
    return {"psnr": metrics.mean(r["psnr"] for r in records),
            "ssim": metrics.mean(r["ssim"] for r in records),
            "lpips": metrics.mean(r["lpips"] for r in records),
            "frame0_window": max(r["frame0_window"] for r in records)}


def table(result: dict) -> str:
    """Return the markdown table of ``result`` (means over scenes)."""
    lines = [f"Scenes: {result['scenes']}; cameras: {', '.join(result['cameras'])}; depth: "
             f"{'ground truth' if result['depth'] == 'gt' else 'estimated (built-in prior)'}; "
             "ground-truth motion; metrics on valid pixels.", "",
             "| method | PSNR ↑ | SSIM ↑ | LPIPS ↓ | frame 0 worst window ↓ |",
             "|---|---|---|---|---|"]
    for method in result["methods"]:
        m = summarize([r for r in result["records"] if r["method"] == method])
        lp = "n/a" if result["lpips_reason"] else f"{m['lpips']:.4f}"
        lines.append(f"| {LABELS[method]} | {m['psnr']:.2f} | {m['ssim']:.4f} | {lp} | "
                     f"{m['frame0_window']:.1f} |")
    lines += ["", "Frame 0 worst window: the largest mean error over a 32x32 block of frame 0 "
              "(the photo, at the source camera) in 8-bit steps, the worst over scenes and paths."]
    if result.get("environment"):
        lines += ["", f"Computed on: {result['environment']}."]
    if result["lpips_reason"]:
        lines += ["", f"LPIPS n/a: {result['lpips_reason']}."]
    return "\n".join(lines) + "\n"


def _write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".partial" + path.suffix)
    write(tmp)
    tmp.replace(path)


def save(result: dict, out: Path, overwrite: bool) -> None:
    """Write ``table.md``, ``per_scene.csv`` and ``contact_sheet.png`` into ``out``."""
    import imageio.v3 as iio

    names = ["table.md", "per_scene.csv", "contact_sheet.png"]
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise UserError(f"'{out / existing[0]}' exists: pass --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "table.md", lambda p: p.write_text(table(result)))

    def write_csv(p):
        with open(p, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["scene", "method", "psnr", "ssim", "lpips",
                                                   "frame0_window"])
            writer.writeheader()
            writer.writerows(result["records"])

    _write(out / "per_scene.csv", write_csv)
    if result["contact"]:
        rows = []
        for shown in result["contact"]:
            tiles = [shown["ground truth"]] + [shown[m] for m in result["methods"] if m in shown]
            rows.append(torch.cat(tiles, dim=2))
        sheet = (torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5)
        _write(out / "contact_sheet.png", lambda p: iio.imwrite(p, sheet.astype(np.uint8)))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.eval.compare",
                                description="Compare the 3D cinemagraph methods on synthetic "
                                "ground truth (PSNR, SSIM, LPIPS).")
    p.add_argument("--data", help="dataset folder (python -m cinemagraph.data.synthetic)")
    p.add_argument("--split", help="split folder to read (default test)")
    p.add_argument("--methods", help=f"comma-separated, among {', '.join(METHODS)}")
    p.add_argument("--cameras", help="comma-separated camera paths (default: all present)")
    p.add_argument("--depth", help="gt or estimated")
    p.add_argument("--scenes", type=int, help="use at most this many scenes")
    p.add_argument("--out", help="results folder (default results)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--overwrite", action="store_true", help="replace existing results")
    p.add_argument("overrides", nargs="*", help="key=value settings (conf/eval/compare.yaml)")
    return p


def configure_logging(logger: logging.Logger) -> None:
    """Messages of ``logger`` at INFO; the rest of the package's only from WARNING on (the
    pipeline logs every scene it builds: here that would be hundreds of lines)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("cinemagraph").setLevel(logging.WARNING)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    configure_logging(log)
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args)
        from omegaconf import OmegaConf

        if OmegaConf.is_missing(cfg, "data") or not cfg.data:
            raise UserError("--data is required: a folder written by python -m "
                            "cinemagraph.data.synthetic")
        start = time.perf_counter()
        result = evaluate(cfg)
        save(result, Path(cfg.out), cfg.overwrite)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(result))
    log.info("%d scene(s) x %d method(s) in %.0f s; results in '%s'", result["scenes"],
             len(result["methods"]), time.perf_counter() - start, cfg.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
