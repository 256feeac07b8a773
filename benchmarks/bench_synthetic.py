"""Time the synthetic-scene generator, and compare it with a training step of the decoder.

1. Scenes per second: sampling a scene and ray-casting its full ground truth (source
   image, depth, motion, and 60-frame ``anim``, ``nvs`` and ``both`` sequences for one
   camera path) at 512x384, to tensors on the device (no disk).
2. A training item as training draws it (``SyntheticScenes(frames_per_item=F)``), against
   one training step of the image decoder (``ImgDecoder``, the official architecture:
   forward, L1 loss, backward, Adam) on a batch of the same ``F`` frames at the same size.
   Training does not wait on data when generating an item takes less than a step.
3. The two together: a loop of decoder steps, each on the next item, the items made ahead
   in a background thread (``Prefetcher``); its time per step against the step alone.

    python benchmarks/bench_synthetic.py [--device cuda] [--scenes 5] [--size 512x384]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time, sync  # noqa: E402

from cinemagraph.data.dataset import Prefetcher, SyntheticScenes  # noqa: E402
from cinemagraph.data.scene import sample_scene, scene_seed  # noqa: E402
from cinemagraph.data.synthetic import make_sample  # noqa: E402
from cinemagraph.models.img_decoder import ImgDecoder  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--scenes", type=int, default=5)
    p.add_argument("--size", default="512x384")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--path", default="circle")
    p.add_argument("--supersample", type=int, default=2)
    p.add_argument("--frames-per-item", type=int, default=4)
    args = p.parse_args()
    device = torch.device(args.device)
    w, h = (int(v) for v in args.size.split("x"))
    print(f"device: {device_name(device)}; {w}x{h}, {args.frames} frames, path {args.path}, "
          f"supersample {args.supersample}")

    # 1. Whole scenes.
    make_sample(sample_scene(scene_seed(0, "train", 999), "train", (h, w)), 2, (args.path,),
                device=device)  # warm-up
    times = []
    for i in range(args.scenes):
        sync(device)
        start = time.perf_counter()
        scene = sample_scene(scene_seed(0, "train", i), "train", (h, w))
        make_sample(scene, args.frames, (args.path,), supersample=args.supersample, device=device)
        sync(device)
        times.append(time.perf_counter() - start)
    per_scene = statistics.median(times)
    views = 1 + 3 * args.frames
    print(f"| whole scene ({views} views) | {per_scene:.3f} s | {1 / per_scene:.2f} scenes/s |")

    # 2. A training item against a decoder training step.
    data = SyntheticScenes(1000, "train", size=(h, w), frames=args.frames, paths=(args.path,),
                           kinds=("both",), frames_per_item=args.frames_per_item,
                           supersample=1, device=device)
    item_times = []
    for i in range(args.scenes):
        sync(device)
        start = time.perf_counter()
        data[i]
        sync(device)
        item_times.append(time.perf_counter() - start)
    per_item = statistics.median(item_times)
    decoder = ImgDecoder().to(device)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=1e-4)
    b = args.frames_per_item
    x0 = torch.rand(b, 37, h, w, device=device)
    x1 = torch.rand(b, 37, h, w, device=device)
    target = torch.rand(b, 3, h, w, device=device)

    def step():
        optimiser.zero_grad(set_to_none=True)
        loss = (decoder(x0, x1, 0.3) - target).abs().mean()
        loss.backward()
        optimiser.step()

    per_step = median_time(step, device, runs=5, warmup=2)
    print(f"| training item ({b} frames of 'both', supersample 1) | {per_item:.3f} s | |")
    print(f"| decoder training step (batch {b}, fp32) | {per_step:.3f} s | |")
    verdict = "faster" if per_item < per_step else "slower"
    print(f"generation of one item is {per_step / per_item:.2f}x the speed of a decoder step "
          f"({verdict} than training consumes it)")

    # 3. Both together: each step trains on the next item, made ahead in a thread.
    steps = 3 * args.scenes
    items = Prefetcher((data[i] for i in range(100, 100 + steps + 2)), depth=2, device=device)
    loop_times = []
    for i in range(steps):
        sync(device)
        start = time.perf_counter()
        item = next(items)
        target.copy_(item[args.path]["both"]["frames"])
        step()
        sync(device)
        loop_times.append(time.perf_counter() - start)
    per_loop = statistics.median(loop_times[2:])
    print(f"| training step on prefetched items (item + step) | {per_loop:.3f} s | "
          f"{per_loop / per_step:.2f}x the step alone |")


if __name__ == "__main__":
    main()
