"""Time the point splatter alone: one layer of H*W points at 1280x720, K = 8, radius 1.5 px,
37 channels (the configuration the original renders with).

Compares against PyTorch3D's PointsRasterizer + AlphaCompositor in the same run where
pytorch3d is importable, and against our slow reference splatter on a small image.

    python benchmarks/bench_splat.py [--device cuda] [--runs 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

from cinemagraph.render.splat import splat_points, splat_points_reference  # noqa: E402


def make_points(h, w, channels, radius, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xy = torch.stack([xs, ys], -1).view(-1, 2).float() + torch.rand(h * w, 2, generator=g) - 0.5
    z = torch.rand(h * w, generator=g) + 1.0
    r = torch.full((h * w,), radius)
    f = torch.rand(h * w, channels, generator=g)
    return [t.to(device) for t in (xy, z, r, f)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--size", default="1280x720")
    args = p.parse_args()
    device = torch.device(args.device)
    w, h = (int(v) for v in args.size.split("x"))
    xy, z, r, f = make_points(h, w, 37, 1.5, device)
    ours = median_time(lambda: splat_points(xy, z, r, f, (h, w), 8), device, args.runs)
    xg, fg = xy.clone().requires_grad_(), f.clone().requires_grad_()

    def forward_backward():
        out = splat_points(xg, z, r, fg, (h, w), 8)
        (out.features.sum() + out.alpha.sum()).backward()

    both = median_time(forward_backward, device, args.runs)
    print(f"device: {device_name(device)}")
    print("| splatter | points | image | K | radius | channels | median ms |")
    print("|---|---|---|---|---|---|---|")
    print(f"| ours (cinemagraph.render.splat) | {h * w} | {w}x{h} | 8 | 1.5 px | 37 | {ours * 1e3:.1f} |")
    print(f"| ours, forward + backward (positions, features) | {h * w} | {w}x{h} | 8 | 1.5 px | "
          f"37 | {both * 1e3:.1f} |")
    try:
        from cinemagraph.render.pytorch3d_backend import splat_points_pytorch3d
        import pytorch3d  # noqa: F401

        p3d = median_time(lambda: splat_points_pytorch3d(xy, z, r, f, (h, w), 8), device, args.runs)
        print(f"| PyTorch3D rasterizer + compositor | {h * w} | {w}x{h} | 8 | 1.5 px | 37 | "
              f"{p3d * 1e3:.1f} |")
        print(f"speed-up of ours over PyTorch3D: {p3d / ours:.1f}x")
    except ImportError:
        print("PyTorch3D: not importable here, so no ratio against it in this run")
    sh, sw = 12, 16
    sxy, sz, sr, sf = make_points(sh, sw, 37, 1.5, device)
    fast = median_time(lambda: splat_points(sxy, sz, sr, sf, (sh, sw), 8), device, 3)
    slow = median_time(lambda: splat_points_reference(sxy, sz, sr, sf, (sh, sw), 8), device, 3)
    print(f"reference splatter at {sw}x{sh}: {slow * 1e3:.1f} ms, ours {fast * 1e3:.2f} ms "
          f"({slow / fast:.0f}x)")


if __name__ == "__main__":
    main()
