"""Time the layered inpainting of a 1280x720 photo (median of several runs).

* the whole original layer-by-layer procedure with the 3D Photo networks (untrained weights:
  the arithmetic is that of the official files), as ``--inpainting learned`` runs it;
* the same procedure computing the partial convolutions' mask counts as the original
  modules do, with the full all-ones ``mask_conv`` (the reference; same run, ratio printed);
* the built-in procedure with push-pull inpainting, for scale.

The photo is the shipped example (or ``--image``), its depth the built-in prior (or
``--depth``, a depth or disparity file as the render reads it).

    python benchmarks/bench_inpaint.py [--device cuda] [--runs 3] [--image P --depth D]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, median_time  # noqa: E402

from cinemagraph.depth import GroundPlanePrior, load_depth_file  # noqa: E402
from cinemagraph.depth.base import normalize_depth  # noqa: E402
from cinemagraph.examples import example_photo  # noqa: E402
from cinemagraph.ldi import (LDISettings, PushPullInpainter, SequentialSettings,  # noqa: E402
                             build_layered_depth_image, sequential_layered_depth_image)
from cinemagraph.ldi.learned import PhotoInpainter  # noqa: E402
from cinemagraph.models.inpaint_nets import (InpaintColorNet, InpaintDepthNet,  # noqa: E402
                                             PartialConv)
from cinemagraph.motion.field import MotionField  # noqa: E402


def reference_forward(self, parts):
    """The original modules' arithmetic: mask repeated over every input channel, counted by
    the stored all-ones convolution as wide as the layer."""
    conv = self.input_conv
    x = torch.cat([v * m for v, m in parts], dim=1)
    full = torch.cat([m.expand(-1, v.shape[1], -1, -1) for v, m in parts], dim=1)
    out = conv(x)
    count = F.conv2d(full, self.mask_conv.weight, None, conv.stride, conv.padding)
    known = count > 0
    bias = conv.bias.view(1, -1, 1, 1) if conv.bias is not None else torch.zeros_like(out[:1, :, :1, :1])
    k = conv.kernel_size[0]
    out = torch.where(known, (out - bias) * (conv.in_channels * k * k) / count.clamp_min(1) + bias,
                      torch.zeros_like(out))
    return out, known[:, :1].to(x.dtype)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--image", type=Path)
    p.add_argument("--depth", type=Path)
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.image is not None:
        from cinemagraph.media import load_image

        image, _, _ = load_image(args.image, None)
    else:
        photo, _ = example_photo("rocket")
        image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    image = F.interpolate(image, size=(720, 1280), mode="bilinear", antialias=True,
                          align_corners=False)
    if args.depth is not None:
        depth = load_depth_file(args.depth, (720, 1280), "auto")
    else:
        depth = GroundPlanePrior()(image)
    image, depth = image.to(device), normalize_depth(depth).to(device)
    motion = MotionField.static(720, 1280, device=device)
    print(f"device: {device_name(device)}; photo 1280x720")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        torch.save(InpaintDepthNet().state_dict(), Path(tmp) / "depth-model.pth")
        torch.save(InpaintColorNet().state_dict(), Path(tmp) / "color-model.pth")
        learned = PhotoInpainter(Path(tmp) / "depth-model.pth", Path(tmp) / "color-model.pth",
                                 device)
    settings = SequentialSettings()
    runs = args.runs if device.type == "cuda" else max(1, min(args.runs, 2))
    results = {}
    with torch.no_grad():
        ldi = sequential_layered_depth_image(image, depth, motion, learned, settings)
        layers = ldi.num_layers
        results["original procedure + 3D Photo networks"] = median_time(
            lambda: sequential_layered_depth_image(image, depth, motion, learned, settings),
            device, runs)
        ours = PartialConv.forward
        PartialConv.forward = reference_forward
        try:
            results["same, reference mask convolutions"] = median_time(
                lambda: sequential_layered_depth_image(image, depth, motion, learned, settings),
                device, runs)
        finally:
            PartialConv.forward = ours
        results["built-in procedure + push-pull"] = median_time(
            lambda: build_layered_depth_image(image, depth, motion, LDISettings(),
                                              PushPullInpainter()), device, runs)
    print(f"layers: {layers} (built-in prior depth)" if args.depth is None else f"layers: {layers}")
    print("| variant | seconds |")
    print("|---|---|")
    for name, t in results.items():
        print(f"| {name} | {t:.3f} |")
    ratio = results["same, reference mask convolutions"] / results["original procedure + 3D Photo networks"]
    print(f"speed-up of the box-count mask over the reference mask convolutions: {ratio:.2f}x")


if __name__ == "__main__":
    main()
