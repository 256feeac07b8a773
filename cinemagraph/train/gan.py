"""The multi-scale PatchGAN discriminator and the losses the original trains with
(pix2pixHD / SPADE: hinge GAN loss and discriminator feature matching)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """``n_layers`` 4x4 convolutions (spectral norm, instance norm, LeakyReLU 0.2), stride 2
    but the last, channels ``ndf`` doubling up to 512, then a 4x4 convolution to one logit per
    patch. :meth:`forward` returns every layer's output (the last is the logit map)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        channels = ndf
        for n in range(1, n_layers):
            previous, channels = channels, min(channels * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(nn.Sequential(
                spectral_norm(nn.Conv2d(previous, channels, 4, stride, 2, bias=False)),
                nn.InstanceNorm2d(channels), nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(channels, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` discriminators, each on the input downsampled once more (3x3 average, stride 2)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, num_d: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers)
                                    for _ in range(num_d))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        results = []
        for i, d in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(d(x))
        return results


def hinge_d_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``, averaged over scales."""
    losses = [F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)]
    return torch.stack(losses).mean()


def hinge_g_loss(fake: list[list[Tensor]]) -> Tensor:
    """``-mean(D(fake))``, averaged over scales."""
    return torch.stack([-f[-1].mean() for f in fake]).mean()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """L1 between the discriminator's intermediate features on real and generated inputs,
    summed over layers and averaged over scales, as SPADE weighs it (the real features are
    constants)."""
    per_scale = [sum(F.l1_loss(f, r.detach()) for r, f in zip(rs[:-1], fs[:-1]))
                 for rs, fs in zip(real, fake)]
    return torch.stack(per_scale).mean()


def end_point_error(pred: Tensor, target: Tensor) -> Tensor:
    """Mean Euclidean distance between two motion fields ``(B, 2, H, W)``."""
    return (pred - target).norm(dim=1).mean()
