"""Time the motion network: inference at 768x768, the whole motion stage on a 1280x720 photo
against the built-in hint interpolation (the component it replaces; ratio in the same run),
and training steps (generator + discriminator) at the experiments' sizes.

Untrained weights (the arithmetic is that of the official file). Median of several runs.

    python benchmarks/bench_motion.py [--device cuda] [--runs 10] [--train-steps 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

from cinemagraph.models.motion_net import MotionNet  # noqa: E402
from cinemagraph.motion import HintInterpolator, MotionHints  # noqa: E402
from cinemagraph.motion.network import NetworkMotion  # noqa: E402


def train_step_time(device, size, batch, runs):
    from omegaconf import OmegaConf

    from cinemagraph.train.config import TrainConfig
    from cinemagraph.train.motion import MotionTrainer

    cfg = OmegaConf.structured(TrainConfig)
    cfg.motion.data.size = size
    cfg.motion.data.scenes = 4
    cfg.trainer.batch_size = batch
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MotionTrainer(cfg, Path(tmp), device)
        g = torch.Generator().manual_seed(0)
        item = {"image": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
                "mask": (torch.rand(batch, 1, size, size, generator=g) > 0.5).float(),
                "hint": torch.randn(batch, 2, size, size, generator=g),
                "motion": torch.randn(batch, 2, size, size, generator=g)}
        return median_time(lambda: trainer.train_step(item), device, runs, warmup=2)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=10)
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cpu = device.type == "cpu"
    runs = 3 if cpu else args.runs
    print(f"device: {device_name(device)}")
    net = MotionNet().to(device)
    x = (torch.rand(1, 3, 768, 768, device=device) * 2 - 1, torch.ones(1, 1, 768, 768, device=device),
         torch.zeros(1, 2, 768, 768, device=device))
    with torch.no_grad():
        t_net = median_time(lambda: net(*x), device, runs)
    image = torch.rand(1, 3, 720, 1280)
    mask = torch.zeros(1, 1, 720, 1280, dtype=torch.bool)
    mask[..., 360:, :] = True
    hints = MotionHints(torch.tensor([[300.0, 500.0], [900.0, 600.0]]),
                        torch.tensor([[1.0, 0.2], [1.5, -0.1]]), mask)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sceneflow_model.pth"
        torch.save({"netG": MotionNet().state_dict()}, path)
        stage = NetworkMotion(path, device)
        t_stage = median_time(lambda: stage(image, hints), device, runs)
    interp = HintInterpolator()
    t_interp = median_time(lambda: interp(hints, (720, 1280), device=device), device, runs)
    print("| what | ms |")
    print("|---|---|")
    print(f"| motion network, 768x768, fp32 | {t_net * 1e3:.1f} |")
    print(f"| whole motion stage, 1280x720 photo (inputs, network, post-processing) | {t_stage * 1e3:.1f} |")
    print(f"| built-in hint interpolation, same photo | {t_interp * 1e3:.1f} |")
    print(f"network stage / hint interpolation: {t_stage / t_interp:.2f}x")
    steps = max(1, args.train_steps if not cpu else 2)
    print("| training step (G + D) | ms | steps/s | images/s |")
    print("|---|---|---|---|")
    for size, batch in ((256, 4), (768, 1)):
        t = train_step_time(device, size, batch, steps)
        print(f"| {size}x{size}, batch {batch} | {t * 1e3:.0f} | {1 / t:.2f} | {batch / t:.1f} |")


if __name__ == "__main__":
    main()
