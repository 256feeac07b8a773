"""Time DPT-Hybrid (or DPT-Large) on a 1280x720 photo (network input 384x672), fp32 and reduced precision.

The network alone (CUDA events or wall time, median of several runs) with untrained weights
(the arithmetic is the same as with the official file), and the whole depth stage
(resize, network, resize back, median filter); the built-in prior in the same run.

    python benchmarks/bench_depth.py [--device cuda] [--runs 10] [--model dpt_large]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

from cinemagraph.depth import GroundPlanePrior  # noqa: E402
from cinemagraph.depth.dpt import MODELS, DPTDepth, network_size  # noqa: E402
from cinemagraph.models import create  # noqa: E402
from cinemagraph.models.zoo import REGISTRY  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--model", default="dpt_hybrid", choices=sorted(MODELS))
    args = p.parse_args()
    device = torch.device(args.device)
    h, w = network_size(720, 1280)
    print(f"device: {device_name(device)}; {MODELS[args.model]}, input {w}x{h} (a 1280x720 photo)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / REGISTRY[args.model].official_file
        torch.save(create(args.model).state_dict(), path)
        variants = [("fp32", torch.float32, False)]
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            variants += [("bf16", torch.bfloat16, False), ("bf16 + channels-last", torch.bfloat16, True),
                         ("fp16", torch.float16, False)]
        image = torch.rand(1, 3, 720, 1280)
        rows = []
        for name, dtype, cl in variants:
            stage = DPTDepth(path, device, dtype, channels_last=cl, model=args.model)
            x = torch.rand(1, 3, h, w, device=device, dtype=dtype)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                net = median_time(lambda: stage.model(x), device, args.runs if device.type == "cuda" else 3)
            whole = median_time(lambda: stage(image), device, 3)
            rows.append((name, net, whole))
        prior = median_time(lambda: GroundPlanePrior()(image), torch.device("cpu"), 3)
    print("| variant | network ms | whole depth stage ms |")
    print("|---|---|---|")
    for name, net, whole in rows:
        print(f"| {name} | {net * 1e3:.1f} | {whole * 1e3:.1f} |")
    print(f"built-in prior (CPU), same photo: {prior * 1e3:.0f} ms")
    if len(rows) > 1:
        print(f"bf16 speed-up over fp32 (network): {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
