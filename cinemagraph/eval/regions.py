"""Where on the synthetic scenes a feature network + decoder gains over the built-in decoder.

    python -m cinemagraph.eval.regions WEIGHTS [WEIGHTS ...] --data DIR [--split train]
        [--cameras zoom-in,circle] [--scenes N] [--out FILE.csv]

Each frame's valid pixels fall in one of three regions (:data:`REGIONS`), decided by its
splats (:func:`region_masks`):

* ``border``: the points seen there come from outside the photo, from the border that the
  layered depth image adds around it for the camera path. Their colours were invented by
  the layers' inpainting; a decoder that gains there has learned what the synthetic
  scenes hold beyond their edges, which a real photo does not tell;
* ``fluid``: inside the photo, over half the opacity comes from points the motion field
  moves (in the forward or the backward frame);
* ``static``: the rest (inside the photo, nothing moving).

For the built-in decoder and each weight file (scored as the comparison's ``ours`` and
``ours-learned``, :mod:`cinemagraph.eval.compare`), it sums the squared error over each
region's pixels of all frames, paths and scenes, and prints each region's share of the
pixels, its PSNR (of the pooled mean squared error; not the comparison's mean of per-frame
PSNRs) and each file's share of the whole reduction of the squared error: which part of a
gain the photo itself holds. CSV to ``--out`` (not overwritten without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from ..render.decode import SplattedFrame
from ..spacetime.rules import from_outside, moving_opacity

#: The regions of a frame, in the order of :func:`region_masks`.
REGIONS = ("border", "fluid", "static")


def region_masks(forward: SplattedFrame, backward: SplattedFrame | None) -> Tensor:
    """The regions ``(3, H, W)`` bool of one splatted frame (module docstring): a pixel is
    ``border`` where the forward frame's points there were shown by the photo outside its
    frame (its pixel less their displacement; where nothing covers it, the displacement is
    zero and it counts as inside), ``fluid`` inside where over half its opacity moves, else
    ``static``. Needs the frames' displacement and share of moving points."""
    if forward.displacement is None:
        raise ValueError("region_masks needs the splats' displacement")
    border = from_outside(forward)[0, 0] > 0
    fluid = ~border & (moving_opacity(forward, backward)[0, 0] > 0.5)
    return torch.stack([border, fluid, ~border & ~fluid])


class RecordingDecoder:
    """A decoder that hands its frames to ``decoder`` and keeps each frame's
    :func:`region_masks` in :attr:`masks` (it asks the renderer for the displacement)."""

    reads_displacement = True

    def __init__(self, decoder):
        self.decoder = decoder
        self.description = decoder.description
        self.masks: list[Tensor] = []

    def __call__(self, forward: SplattedFrame, backward: SplattedFrame | None,
                 time: float) -> Tensor:
        self.masks.append(region_masks(forward, backward).cpu())
        return self.decoder(forward, backward, time)


def region_errors(data: Path, weights: list[Path], split: str | None = None,
                  cameras: list[str] | None = None, scenes: int | None = None,
                  device: str | torch.device = "cpu", progress: bool = False) -> dict:
    """``{"pixels": {region: n}, "sse": {method: {region: sum}}, "environment": line}`` over
    the scenes of ``data`` (``method``: ``builtin`` and each weight file's path as given),
    every RGB channel counted as a pixel; ``environment`` names what computed it
    (:func:`~cinemagraph.eval.compare.environment`)."""
    from ..motion.field import MotionField
    from ..pipeline import Components
    from .compare import environment
    from .data import load_scene, scene_folders
    from .methods import MethodInput, _learned_components, _pipeline

    folders = scene_folders(Path(data), split)[:scenes]
    device = torch.device(device)
    methods = ["builtin"] + [str(w) for w in weights]
    pixels = dict.fromkeys(REGIONS, 0)
    sse = {m: dict.fromkeys(REGIONS, 0.0) for m in methods}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(folders) * len(methods), desc="scenes x methods", unit="run")
    for folder in folders:
        scene = load_scene(folder, cameras)
        motion = MotionField(scene.flow.to(device), scene.mask.to(device))
        for method in methods:
            if method == "builtin":
                components = Components()
            else:
                components = _learned_components(device, Path(method))
            for name, path in scene.paths.items():
                recorder = RecordingDecoder(components.decoder)
                inp = MethodInput(scene.image.to(device), scene.depth.to(device), motion, path,
                                  scene.K.to(device))
                with torch.no_grad():
                    frames = _pipeline(inp, components=Components(
                        components.inpainter, components.features, recorder)).cpu()
                masks = torch.stack(recorder.masks) & scene.valid[name][:, None].bool()
                error = (frames.double() - scene.frames[name].double()).square().sum(1)
                for i, region in enumerate(REGIONS):
                    sse[method][region] += float(error[masks[:, i]].sum())
                    if method == "builtin":
                        pixels[region] += 3 * int(masks[:, i].sum())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return {"pixels": pixels, "sse": sse, "environment": environment(device)}


def _psnr(sse: float, n: int) -> float:
    if n == 0:
        return math.nan
    return math.inf if sse == 0 else 10.0 * math.log10(n / sse)


def table(result: dict) -> list[dict]:
    """One row per method and region: share of the pixels, PSNR, and (weight files) the
    region's share of the method's whole reduction of the squared error."""
    pixels, sse = result["pixels"], result["sse"]
    total = sum(pixels.values())
    base = sse["builtin"]
    rows = []
    for method, errors in sse.items():
        saved = sum(base.values()) - sum(errors.values())
        for region in REGIONS:
            psnr = _psnr(errors[region], pixels[region])
            row = {"method": method, "region": region,
                   "pixel_share": pixels[region] / total if total else math.nan,
                   "psnr": psnr, "gain": psnr - _psnr(base[region], pixels[region]),
                   "reduction_share": math.nan,
                   "computed_on": result.get("environment", "")}
            if method != "builtin" and saved != 0:
                row["reduction_share"] = (base[region] - errors[region]) / saved
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", type=Path, nargs="+", help="weight files")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default=None)
    p.add_argument("--cameras", default=None, help="comma-separated paths (default: all)")
    p.add_argument("--scenes", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        for w in args.weights:
            if not w.is_file():
                raise UserError(f"'{w}' is not a file: give weight files (*.safetensors)")
        if args.out is not None and args.out.exists() and not args.overwrite:
            raise UserError(f"'{args.out}' exists: pass --overwrite to replace it")
        from ..device import select_device

        result = region_errors(args.data, args.weights, args.split,
                               args.cameras.split(",") if args.cameras else None, args.scenes,
                               select_device(args.device), progress=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = table(result)
    print("| weights | region | pixels | PSNR | gain (dB) | share of the error saved |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        share = "" if math.isnan(r["reduction_share"]) else f"{100 * r['reduction_share']:.0f} %"
        gain = "" if r["method"] == "builtin" else f"{r['gain']:+.2f}"
        print(f"| {Path(r['method']).name} | {r['region']} | {100 * r['pixel_share']:.1f} % | "
              f"{r['psnr']:.2f} | {gain} | {share} |")
    print(f"\nComputed on: {result['environment']}.")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(args.out)
        print(f"wrote '{args.out}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
