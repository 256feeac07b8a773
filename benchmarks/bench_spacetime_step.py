"""Time one training step of the feature network + decoder in the training process.

    python benchmarks/bench_spacetime_step.py [--device cuda] [--runs 20]
        [--experiment spacetime_base] [--batches 3] [--compare OTHER_CHECKOUT]

The items are made beforehand, as the data-loading workers make them; the step timed is
what the training process does with a batch (``SpaceTimeTrainer.train_step``): moving it to
the device, the feature network, applying the splat plans, decoding, the loss, the backward
pass and Adam. Batch 8 samples, 4 a scene, ``anim``, ``nvs`` and ``both`` samples at
192x256. ``--compare DIR`` runs the same timing on the checkout in ``DIR`` (its
``cinemagraph`` package and ``conf``) in the same run, for the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

OVERRIDES = ["spacetime.data.per_scene=4", "trainer.batch_size=8", "trainer.num_workers=0",
             "spacetime.data.kinds=[anim,nvs,both]", "spacetime.data.scenes=64"]


def time_steps(args) -> float:
    import cinemagraph
    from hydra import compose, initialize_config_dir

    from cinemagraph.train.config import register_train_configs
    from cinemagraph.train.spacetime import SpaceTimeTrainer

    device = torch.device(args.device)
    register_train_configs()
    conf = Path(cinemagraph.__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = compose("train", overrides=[f"experiment={args.experiment}",
                                          f"trainer.device={device.type}", *OVERRIDES])
    with tempfile.TemporaryDirectory() as out:
        trainer = SpaceTimeTrainer(cfg, Path(out), device)
        per_batch = trainer.loader_batch_size
        batches = [[trainer.dataset[b * per_batch + i] for i in range(per_batch)]
                   for b in range(args.batches)]
        state = {"n": 0}

        def step():
            trainer.train_step(batches[state["n"] % len(batches)])
            state["n"] += 1

        return median_time(step, device, args.runs, warmup=3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--experiment", default="spacetime_base")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--compare", type=Path, help="another checkout to time in the same run")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    seconds = time_steps(args)
    import cinemagraph

    source = Path(cinemagraph.__file__).resolve().parents[1]
    if args.quiet:
        print(f"median_s={seconds:.6f} source={source}")
        return 0
    print(f"device: {device_name(torch.device(args.device))}")
    print("| code | median s a step | steps/s | samples/s |")
    print("|---|---|---|---|")
    print(f"| {source} | {seconds:.4f} | {1 / seconds:.2f} | {8 / seconds:.1f} |")
    if args.compare:
        env = {**os.environ, "PYTHONPATH": f"{args.compare.resolve()}{os.pathsep}"
               + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, __file__, "--device", args.device, "--runs", str(args.runs),
               "--experiment", args.experiment, "--batches", str(args.batches), "--quiet"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              cwd=args.compare)
        found = re.search(r"median_s=([0-9.]+) source=(.*)", done.stdout)
        if not found:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        other = float(found.group(1))
        print(f"| {found.group(2)} | {other:.4f} | {1 / other:.2f} | {8 / other:.1f} |")
        print(f"speed-up: {other / seconds:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
