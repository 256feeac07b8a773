"""Time each stage of the render and the whole job (median of several runs).

Stages, through the library's front door (:mod:`cinemagraph.api`): depth prior, choosing the
components, motion interpolation, layered depth image + inpainting (+ the feature network when
the learned decoder runs), point cloud with Euler integration, and the frame loop (splat both
clouds, blend, decode, to uint8); video encoding is timed separately. Then the scene is given
a new hint and prepared and rendered again, as an interactive user would: the depth, the
components, the layers with their inpainting and their features are kept. The
reference it competes with is the issue's target (60 frames at 1280x720 under 5 s on one
H100, under 3 minutes on a 2-core CPU). ``--decoder builtin,learned`` (default) times the
render with the built-in decoder and with the learned feature network + decoder that the
render finds by default (``--weights`` names another file), as the render runs them, in the
same run, and prints the ratio.

    python benchmarks/bench_render.py [--device cuda] [--runs 3] [--sizes 512x384,1280x720]
        [--decoder builtin,learned] [--weights FILE] [--camera zoom-in]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, sync  # noqa: E402

from cinemagraph.api import PreparedScene, RenderOptions, choose_components  # noqa: E402
from cinemagraph.depth import GroundPlanePrior  # noqa: E402
from cinemagraph.examples import example_photo  # noqa: E402
from cinemagraph.media.image import to_uint8  # noqa: E402
from cinemagraph.media.video import write_video  # noqa: E402
from cinemagraph.motion import read_hints_json  # noqa: E402


def one_run(photo, hints_file, size, frames, device, options, camera):
    """One render of the example through the library's front door, timed by stage; then the
    same scene given a new hint (its motion reversed) and rendered again."""
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
    components = stage("components", lambda: choose_components(options, device))
    ph, pw = photo.shape[:2]
    hints = read_hints_json(hints_file, (ph, pw)).scaled((h / ph, w / pw), (h, w))
    scene = PreparedScene.of(image.to(device), depth, None, replace(options, hints=hints),
                             components)
    stage("motion (hints)", lambda: scene.motion)
    path = scene.camera_path(camera, frames)
    built = stage("layers + inpainting + features + cloud + integration",
                  lambda: scene.scene(path))
    arrays = stage("frame loop", lambda: [to_uint8(f) for f in scene.render(path)])
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:  # the encoder is optional here: the frame loop is what is compared
        times["video encoding (imageio-ffmpeg missing)"] = float("nan")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            stage("video encoding", lambda: write_video(Path(tmp) / "v.mp4", arrays, 30.0))
    times["total"] = sum(v for v in times.values() if v == v)
    # A new hint: the depth, the components, the layers and their features are kept.
    again = scene.with_motion(replace(hints, vectors=-hints.vectors))
    stage("new hint: motion + layers' flow + cloud",
          lambda: (again.motion, again.scene(path)))
    stage("new hint: frame loop", lambda: [to_uint8(f) for f in again.render(path)])
    return times, built.cloud.pixels.shape[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--sizes", default="512x384,1280x720")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--decoder", default="builtin,learned",
                   help="comma-separated: builtin, learned (default both)")
    p.add_argument("--weights", type=Path, default=None,
                   help="the learned decoder's weight file (default: the one the render finds)")
    p.add_argument("--camera", default="zoom-in")
    args = p.parse_args()
    device = torch.device(args.device)
    decoders = args.decoder.split(",")
    if not set(decoders) <= {"builtin", "learned"}:
        raise SystemExit(f"--decoder {args.decoder}: name builtin, learned or both")
    weights = args.weights
    if "learned" in decoders and weights is None:
        from cinemagraph.spacetime import find_spacetime

        weights = find_spacetime()
        if weights is None:
            raise SystemExit("no learned weights found: give --weights FILE or --decoder builtin")
    photo, hints_file = example_photo("rocket")
    print(f"device: {device_name(device)}; example photo 'rocket', {args.camera}, {args.frames} "
          f"frames, median of {args.runs} runs (after {args.warmup} warm-up)")
    if weights is not None and "learned" in decoders:
        print(f"learned: '{weights}'")
    target = 5.0 if device.type == "cuda" else 180.0
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.split("x"))
        medians = {}
        for decoder in decoders:
            options = RenderOptions(decoder=decoder, decoder_weights=weights if decoder == "learned"
                                    else None, inpainting="builtin", device=str(device))
            for _ in range(args.warmup):
                one_run(photo, hints_file, (h, w), args.frames, device, options, args.camera)
            runs = [one_run(photo, hints_file, (h, w), args.frames, device, options, args.camera)
                    for _ in range(args.runs)]
            medians[decoder] = {name: statistics.median(r[0][name] for r in runs)
                                for name in runs[0][0]}
            points = runs[0][1]
        names = list(medians[decoders[0]])
        print(f"\n{w}x{h}, {points} points")
        print("| stage | " + " | ".join(f"{d} median s" for d in decoders) + " |")
        print("|---|" + "---|" * len(decoders))
        for name in names:
            print(f"| {name} | " + " | ".join(f"{medians[d].get(name, float('nan')):.3f}"
                                             for d in decoders) + " |")
        for d in decoders:
            first = medians[d]["layers + inpainting + features + cloud + integration"]
            again = medians[d]["new hint: motion + layers' flow + cloud"]
            print(f"{d}: a new hint re-prepares in {again:.3f} s against {first:.3f} s the first "
                  f"time ({again / first:.2f}x; the depth, components, layers and features kept)")
            loop, total = medians[d]["frame loop"], medians[d]["total"]
            print(f"{d}: rendering rate after set-up {args.frames / loop:.1f} frames/s; "
                  f"end to end {total:.2f} s = {total / target:.2f} x the target "
                  f"({target:.0f} s for 60 frames at 1280x720)")
        if len(decoders) == 2:
            print(f"learned / builtin: end to end {medians['learned']['total'] / medians['builtin']['total']:.2f}x, "
                  f"frame loop {medians['learned']['frame loop'] / medians['builtin']['frame loop']:.2f}x")


if __name__ == "__main__":
    main()
