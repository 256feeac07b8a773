"""Where on the synthetic scenes one method loses or gains against another, by region.

    python -m cinemagraph.eval.regions --data DIR --methods naive-pc-sym,ours[,...]
        [--base naive-pc-sym] [--split val] [--cameras zoom-in,circle] [--scenes N]
        [--weights FILE] [--out FILE.csv]

Each frame's valid pixels fall in one of four regions (:data:`REGIONS`), decided by one
reference, the same for every method (:func:`region_masks`): the layered point cloud of
the pipeline's built-in layering (the layers, their inpainting and the border that the path
needs), each point marked by where it comes from, splatted and blended along the path as
the render blends its frames. A pixel is

* ``outside``: over half its opacity from points past the photo's edges (the border the
  layers add for the camera path): what the photo does not show at all;
* ``disoccluded``: inside the photo, over half from points the photo does not show (the
  inpainted part of a farther layer, revealed by the camera), or not covered at all;
* ``fluid``: over half from points that the motion field moves;
* ``static``: the rest, what the photo shows and what stays still.

For every method (:mod:`cinemagraph.eval.methods`; its stage ablations included) it sums the
squared error over each region's pixels of all frames, paths and scenes and prints each
region's share of the pixels, its PSNR (of the pooled mean squared error, not the
comparison's mean of per-scene PSNRs), its gap to ``--base`` and that region's share of the
whole gap: which part of the photo a difference comes from. The same for SSIM: each pixel's
SSIM (the comparison's map, :func:`~cinemagraph.eval.metrics.ssim_map`) summed over the
region, its mean there, the gap to the base and the region's share of the whole difference in
summed SSIM. Below the table, each method's mean per-scene PSNR and SSIM as the comparison
computes them, and their paired differences to the base with the standard error over scenes.
CSV to ``--out`` (not overwritten without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from ..render.camera import CameraPath
from ..render.pipeline import RenderSettings, splat_cloud
from ..render.pointcloud import point_index

#: The regions of a frame, in the order of :func:`region_masks`.
REGIONS = ("outside", "disoccluded", "fluid", "static")


def point_origins(scene) -> Tensor:
    """``(N, 3)`` per point of ``scene``'s cloud (a :class:`~cinemagraph.pipeline.Scene`):
    1 where it lies past the photo's edges, 1 where the photo does not show it (inside the
    photo), 1 where it moves; else 0."""
    ldi, cloud = scene.ldi, scene.cloud
    h, w = ldi.photo_size
    b = ldi.border
    x, y = cloud.pixels[:, 0] - b, cloud.pixels[:, 1] - b
    outside = (x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)
    shown = ldi.visible[:, 0].flatten().index_select(0, point_index(ldi))
    hidden = ~shown & ~outside
    moving = torch.zeros_like(outside)
    moving[cloud.moving] = True
    return torch.stack([outside, hidden, moving], 1).to(cloud.features.dtype)


def region_masks(scene, path: CameraPath, size: tuple[int, int],
                 symmetric: bool = True) -> Tensor:
    """The regions ``(F, 4, H, W)`` bool of the ``F = len(path)`` frames of ``scene`` (module
    docstring): its cloud's :func:`point_origins` splatted forward and (``symmetric``)
    backward and blended by the render's weights ``1 - t/F`` and ``t/F``; every pixel in
    exactly one region."""
    cloud = scene.cloud
    marked = replace(cloud, features=point_origins(scene))
    settings = RenderSettings(symmetric=symmetric)
    n = len(path)
    out = []
    for t in range(n):
        pose, K = path.world_to_camera[t].to(cloud.K), path.K[t].to(cloud.K)
        fwd = splat_cloud(marked, cloud.positions(t), pose, K, size, settings)
        parts = [(1.0, fwd)]
        if symmetric and t > 0 and cloud.moving.numel():
            bwd = splat_cloud(marked, cloud.positions(n - t, backward=True), pose, K, size,
                              settings)
            parts = [(1.0 - t / n, fwd), (t / n, bwd)]
        alpha = sum(wt * f.alpha for wt, f in parts)
        share = sum(wt * f.features for wt, f in parts) / alpha.clamp_min(1e-6)
        outside = share[0, 0] > 0.5
        disoccluded = ~outside & ((share[0, 1] > 0.5) | (alpha[0, 0] < 0.5))
        fluid = ~outside & ~disoccluded & (share[0, 2] > 0.5)
        static = ~outside & ~disoccluded & ~fluid
        out.append(torch.stack([outside, disoccluded, fluid, static]))
    return torch.stack(out).cpu()


def region_errors(data: Path, methods: list[str], split: str | None = None,
                  cameras: list[str] | None = None, scenes: int | None = None,
                  device: str | torch.device = "cpu", weights: Path | None = None,
                  progress: bool = False) -> dict:
    """``{"pixels": {region: n}, "sse": {method: {region: sum}}, "ssim": {method: {region:
    sum}}, "scene_psnr": {method: [per scene]}, "scene_ssim": {method: [per scene]},
    "scenes": [names], "environment": line}`` over the scenes of ``data``, every RGB channel
    counted as a pixel in ``pixels`` and ``sse``, each pixel once in ``ssim`` (its SSIM,
    the mean over the channels); ``scene_psnr`` and ``scene_ssim`` as the comparison computes
    them (:func:`~cinemagraph.eval.metrics.psnr_of_mse` of the frames' MSEs on valid pixels;
    the mean over frames of each frame's mean SSIM on valid pixels);
    ``environment`` names what computed it (:func:`~cinemagraph.eval.compare.environment`)."""
    from ..api import PreparedScene
    from ..motion.field import MotionField
    from . import metrics
    from .compare import environment
    from .data import load_scene, scene_folders
    from .methods import METHODS, MethodInput, _border

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}: use {', '.join(METHODS)}")
    folders = scene_folders(Path(data), split)[:scenes]
    device = torch.device(device)
    pixels = dict.fromkeys(REGIONS, 0)
    sse = {m: dict.fromkeys(REGIONS, 0.0) for m in methods}
    ssim = {m: dict.fromkeys(REGIONS, 0.0) for m in methods}
    scene_psnr = {m: [] for m in methods}
    scene_ssim = {m: [] for m in methods}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(folders) * len(methods), desc="scenes x methods", unit="run")
    for folder in folders:
        scene = load_scene(folder, cameras)
        image, depth = scene.image.to(device), scene.depth.to(device)
        motion = MotionField(scene.flow.to(device), scene.mask.to(device))
        inputs = {name: MethodInput(image, depth, motion, path, scene.K.to(device), weights)
                  for name, path in scene.paths.items()}
        masks = {}
        with torch.no_grad():
            for name, inp in inputs.items():
                made = PreparedScene.of(image, depth, motion, border=_border(inp)).scene(inp.path)
                masks[name] = (region_masks(made, inp.path, tuple(image.shape[-2:]))
                               & scene.valid[name][:, None].bool())
                for i, region in enumerate(REGIONS):
                    pixels[region] += 3 * int(masks[name][:, i].sum())
        for method in methods:
            frame_mse, frame_ssim = [], []
            for name, inp in inputs.items():
                with torch.no_grad():
                    frames = METHODS[method](inp).cpu()
                target, valid = scene.frames[name], scene.valid[name]
                error = (frames.double() - target.double()).square().sum(1)
                for i, region in enumerate(REGIONS):
                    sse[method][region] += float(error[masks[name][:, i]].sum())
                for t in range(frames.shape[0]):
                    frame_mse.append(metrics.mse(frames[t], target[t], valid[t]))
                    smap = metrics.ssim_map(frames[t], target[t])
                    for i, region in enumerate(REGIONS):
                        ssim[method][region] += float(smap[masks[name][t, i]].sum())
                    frame_ssim.append(metrics.mean_over(smap, valid[t]))
            scene_psnr[method].append(metrics.psnr_of_mse(frame_mse))
            scene_ssim[method].append(metrics.mean(frame_ssim))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return {"pixels": pixels, "sse": sse, "ssim": ssim, "scene_psnr": scene_psnr,
            "scene_ssim": scene_ssim,
            "scenes": [f.name for f in folders], "environment": environment(device)}


def _psnr(sse: float, n: int) -> float:
    if n == 0:
        return math.nan
    return math.inf if sse == 0 else 10.0 * math.log10(n / sse)


def table(result: dict, base: str) -> list[dict]:
    """One row per method and region: share of the pixels, PSNR, the gap to ``base`` in dB
    and the region's share of the method's whole difference in squared error to ``base``
    (positive where the method has less error there); then the region's mean SSIM, its gap
    to ``base`` and the region's share of the whole difference in summed SSIM."""
    pixels, sse, ssim = result["pixels"], result["sse"], result["ssim"]
    total = sum(pixels.values())
    reference = sse[base]
    rows = []
    for method, errors in sse.items():
        saved = sum(reference.values()) - sum(errors.values())
        gained = sum(ssim[method].values()) - sum(ssim[base].values())
        for region in REGIONS:
            psnr = _psnr(errors[region], pixels[region])
            n = pixels[region] // 3
            mean_ssim = ssim[method][region] / n if n else math.nan
            rows.append({"method": method, "region": region,
                         "pixel_share": pixels[region] / total if total else math.nan,
                         "psnr": psnr, "gap": psnr - _psnr(reference[region], pixels[region]),
                         "difference_share": ((reference[region] - errors[region]) / saved
                                              if method != base and saved != 0 else math.nan),
                         "ssim": mean_ssim,
                         "ssim_gap": mean_ssim - (ssim[base][region] / n if n else math.nan),
                         "ssim_difference_share": ((ssim[method][region] - ssim[base][region])
                                                   / gained if method != base and gained != 0
                                                   else math.nan),
                         "computed_on": result.get("environment", "")})
    return rows


def paired(result: dict, method: str, base: str, score: str = "psnr"
           ) -> tuple[float, float, float]:
    """``method``'s mean per-scene ``score`` (``psnr`` or ``ssim``), its mean paired
    difference to ``base`` and that difference's standard error over the scenes."""
    a, b = result[f"scene_{score}"][method], result[f"scene_{score}"][base]
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    mean = sum(diffs) / n
    se = (math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else math.nan)
    return sum(a) / n, mean, se


def main(argv: list[str] | None = None) -> int:
    from .methods import LABELS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--methods", required=True, help="comma-separated methods "
                   "(cinemagraph/eval/methods.py)")
    p.add_argument("--base", default=None, help="the method the others are compared with "
                   "(default: the first)")
    p.add_argument("--split", default=None)
    p.add_argument("--cameras", default=None, help="comma-separated paths (default: all)")
    p.add_argument("--scenes", type=int, default=None)
    p.add_argument("--weights", type=Path, default=None,
                   help="the weight file of ours-learned (default: the one found)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        methods = args.methods.split(",")
        base = args.base or methods[0]
        if base not in methods:
            methods = [base] + methods
        if args.weights is not None and not args.weights.is_file():
            raise UserError(f"'{args.weights}' is not a file: give a weight file (*.safetensors)")
        if args.out is not None and args.out.exists() and not args.overwrite:
            raise UserError(f"'{args.out}' exists: pass --overwrite to replace it")
        from ..device import select_device

        result = region_errors(args.data, methods, args.split,
                               args.cameras.split(",") if args.cameras else None, args.scenes,
                               select_device(None if args.device == "auto" else args.device),
                               args.weights, progress=True)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = table(result, base)
    def share(value):
        return "" if math.isnan(value) else f"{100 * value:.0f} %"

    print(f"| method | region | pixels | PSNR | against {base} (dB) | share of the difference "
          f"| SSIM | against {base} | share of the SSIM difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gap = "" if r["method"] == base else f"{r['gap']:+.2f}"
        ssim_gap = "" if r["method"] == base else f"{r['ssim_gap']:+.4f}"
        print(f"| {r['method']} | {r['region']} | {100 * r['pixel_share']:.1f} % | "
              f"{r['psnr']:.2f} | {gap} | {share(r['difference_share'])} | "
              f"{r['ssim']:.4f} | {ssim_gap} | {share(r['ssim_difference_share'])} |")
    print(f"\n| method | PSNR (mean over {len(result['scenes'])} scenes) | against {base} "
          f"| SSIM | against {base} |")
    print("|---|---|---|---|---|")
    for method in methods:
        mean, diff, se = paired(result, method, base)
        mean_ssim, diff_ssim, se_ssim = paired(result, method, base, "ssim")
        against = "" if method == base else f"{diff:+.2f} +- {se:.2f}"
        against_ssim = "" if method == base else f"{diff_ssim:+.4f} +- {se_ssim:.4f}"
        print(f"| {LABELS[method]} | {mean:.2f} | {against} | {mean_ssim:.4f} | {against_ssim} |")
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
