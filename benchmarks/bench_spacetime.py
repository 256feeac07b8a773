"""Time the feature network (once per photo, on its layers) and the image decoder (every
frame, with the residual presets' composite, displacement inputs, gate and detail rule) at
1280x720, fp32 and bf16, for each preset; our residual presets also as the render runs them,
at the working size (``--work-size``, the render's ``--decoder-size``: shrunk, run, enlarged);
the built-in compositing decoder in the same run (the component the learned one replaces);
the bands' 191-px spread by running filters (the CPU's) against the pools (a GPU's).
The presets' rows use untrained weights in their default rules; the weight file the render
finds (``--weights`` names another, ``--weights none`` skips it) gets rows of its own, in the
rules its metadata names (the shipped file's hole, crack and fluid bands).

    python benchmarks/bench_spacetime.py [--device cuda] [--runs 10] [--layers 3] [--work-size 448]
        [--weights FILE|none]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

from cinemagraph.filters import (_cumulative_mean, _pooled_max, _pooled_mean,  # noqa: E402
                                 _running_max)
from cinemagraph.ldi.scene import LayeredDepthImage  # noqa: E402
from cinemagraph.render.decode import CompositingDecoder, SplattedFrame  # noqa: E402
from cinemagraph.spacetime import (PRESETS, WORK_SIZE, LearnedDecoder,  # noqa: E402
                                          LearnedFeatures, SpaceTimeModel, find_spacetime,
                                          load_spacetime)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--work-size", type=int, default=WORK_SIZE)
    p.add_argument("--weights", default=None,
                   help="a weight file to time in its own rules (default: the one the render "
                        "finds; 'none': skip)")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    runs = args.runs if device.type == "cuda" else 2
    h, w, L = 720, 1280, args.layers
    g = torch.Generator().manual_seed(0)
    cover = torch.rand(L, 1, h, w, generator=g) > 0.3
    ldi = LayeredDepthImage(torch.rand(L, 3, h, w, generator=g), 1 + torch.rand(L, 1, h, w, generator=g),
                            cover, cover, torch.zeros(L, 2, h, w), torch.ones(L, 1, h, w))
    ldi = ldi.to(device)
    print(f"device: {device_name(device)}; 1280x720, {L} layers")
    size = args.work_size
    print(f"| preset | precision | feature net per photo ms | decoder per frame ms | "
          f"at {size} px: feature net ms | at {size} px: decoder ms |")
    print("|---|---|---|---|---|---|")

    def frame(c):  # with the points' displacement, which the residual presets read
        alpha = torch.rand(1, 1, h, w, device=device)
        return SplattedFrame(torch.rand(1, c, h, w, device=device) * alpha, alpha,
                             1 + torch.rand(1, 1, h, w, device=device),
                             4 * torch.randn(1, 2, h, w, device=device))

    models = [(preset, SpaceTimeModel(preset)) for preset in PRESETS]
    if args.weights == "none":
        weights = None
    else:
        weights = Path(args.weights) if args.weights else find_spacetime()
    if weights is not None:
        loaded = load_spacetime(weights)
        models.append((f"'{weights.name}' ({loaded.preset})", loaded))
    for preset, model in models:
        model = model.to(device).eval()
        fwd, bwd = frame(4 + model.feature_channels), frame(4 + model.feature_channels)
        dtypes = [("fp32", None)] + ([("bf16", torch.bfloat16)] if device.type == "cuda" else [])
        for name, dtype in dtypes:
            def feats():
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    model.features(ldi)

            def decode():
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    model.decode(fwd, bwd, 0.4)

            row = (f"| {preset} | {name} | {median_time(feats, device, runs) * 1e3:.1f} | "
                   f"{median_time(decode, device, runs) * 1e3:.1f} |")
            if model.residual:
                features = LearnedFeatures(model, "", work_size=size)
                decoder = LearnedDecoder(model, "", dtype=dtype or torch.float32, work_size=size)
                row += (f" {median_time(lambda: features(ldi), device, runs) * 1e3:.1f} |"
                        f" {median_time(lambda: decoder(fwd, bwd, 0.4), device, runs) * 1e3:.1f} |")
            else:
                row += " (always at the frame's size) | |"
            print(row)
    fwd, bwd = frame(4), frame(4)
    t = median_time(lambda: CompositingDecoder()(fwd, bwd, 0.4), device, runs)
    print(f"built-in compositing decoder per frame: {t * 1e3:.1f} ms")
    # The bands' spread (a 191-px max filter, then mean): the running maximum and cumulative
    # sums (what max_filter and box_mean use on the CPU) against the pools (on a GPU).
    for sh, sw in ((252, 448), (h, w)):
        x = torch.rand(1, 1, sh, sw, device=device)
        running = median_time(lambda: _cumulative_mean(
            _running_max(_running_max(x, 191, -1), 191, -2), 191), device, runs)
        pools = median_time(lambda: _pooled_mean(_pooled_max(x, 191), 191), device, runs)
        print(f"band spread, 191 px, {sw}x{sh}: running filters {running * 1e3:.2f} ms, max- "
              f"and average-pools {pools * 1e3:.2f} ms ({pools / running:.1f}x)")


if __name__ == "__main__":
    main()
