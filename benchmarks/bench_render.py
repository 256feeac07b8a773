"""Time each stage of the render and the whole job (median of several runs).

Stages: depth prior, motion interpolation, layered depth image + inpainting, point cloud
with Euler integration, and the frame loop (splat both clouds, blend, decode, to uint8);
video encoding is timed separately. The reference it competes with is the issue's target
(60 frames at 1280x720 under 5 s on one H100, under 3 minutes on a 2-core CPU).

    python benchmarks/bench_render.py [--device cuda] [--runs 3] [--sizes 512x384,1280x720]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, sync  # noqa: E402

from cinemagraph.depth import GroundPlanePrior  # noqa: E402
from cinemagraph.examples import example_photo  # noqa: E402
from cinemagraph.media.image import to_uint8  # noqa: E402
from cinemagraph.media.video import write_video  # noqa: E402
from cinemagraph.motion import HintInterpolator, read_hints_json  # noqa: E402
from cinemagraph.pipeline import Components, build_scene  # noqa: E402
from cinemagraph.render.camera import named_path  # noqa: E402
from cinemagraph.render.pipeline import render_frames  # noqa: E402


def one_run(photo, hints_file, size, frames, device):
    h, w = size
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    image = torch.nn.functional.interpolate(image, size=(h, w), mode="bilinear",
                                            antialias=True, align_corners=False)
    times = {}

    def stage(name, fn):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        times[name] = time.perf_counter() - t
        return out

    depth = stage("depth (prior)", lambda: GroundPlanePrior()(image)).to(device)
    ph, pw = photo.shape[:2]
    hints = read_hints_json(hints_file, (ph, pw)).scaled((h / ph, w / pw), (h, w))
    image = image.to(device)
    motion = stage("motion (hints)", lambda: HintInterpolator()(hints, (h, w), device=device))
    components = Components()
    scene = stage("layers + inpainting + cloud + integration",
                  lambda: build_scene(image, depth, motion, frames, components))
    path = named_path("zoom-in", frames, scene.K.cpu())
    arrays = stage("frame loop", lambda: [to_uint8(f) for f in render_frames(
        scene.cloud, path, (h, w), components.decoder)])
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:  # the encoder is optional here: the frame loop is what is compared
        times["video encoding (imageio-ffmpeg missing)"] = float("nan")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            stage("video encoding", lambda: write_video(Path(tmp) / "v.mp4", arrays, 30.0))
    times["total"] = sum(v for v in times.values() if v == v)
    return times, scene.cloud.pixels.shape[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--sizes", default="512x384,1280x720")
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()
    device = torch.device(args.device)
    photo, hints_file = example_photo("rocket")
    print(f"device: {device_name(device)}; example photo 'rocket', zoom-in, {args.frames} frames, "
          f"median of {args.runs} runs (after {args.warmup} warm-up)")
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.split("x"))
        for _ in range(args.warmup):
            one_run(photo, hints_file, (h, w), args.frames, device)
        runs = [one_run(photo, hints_file, (h, w), args.frames, device) for _ in range(args.runs)]
        points = runs[0][1]
        print(f"\n{w}x{h}, {points} points")
        print("| stage | median s |")
        print("|---|---|")
        for name in runs[0][0]:
            print(f"| {name} | {statistics.median(r[0][name] for r in runs):.3f} |")
        loop = statistics.median(r[0]["frame loop"] for r in runs)
        total = statistics.median(r[0]["total"] for r in runs)
        target = 5.0 if device.type == "cuda" else 180.0
        print(f"rendering rate after set-up: {args.frames / loop:.1f} frames/s; "
              f"end to end {total:.2f} s = {total / target:.2f} x the target "
              f"({target:.0f} s for 60 frames at 1280x720)")


if __name__ == "__main__":
    main()
