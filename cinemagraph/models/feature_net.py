"""The feature network of 3D Cinemagraphy (``ResUNet(encoder='resnet34', in_ch=4, out_ch=32)``).

Input: the RGBA layers of a layered depth image, ``(L, 4, H, W)`` (RGB premultiplied or
inpainted, alpha in {0, 1}); output: features ``(L, 32, H / 4, W / 4)``. The layers of one
image go through together: every batch norm normalises with the statistics of the current
batch (``track_running_stats=False``, as the original), so a layer's features depend on the
other layers.

* Encoder: the ResNet-34 stem and its first three stages (a 7x7 stride-2 convolution, batch
  norm, ReLU, 3x3 max-pool; 3, 4 and 6 basic blocks of 64, 128 and 256 channels), every
  convolution reflect-padded and without bias.
* Decoder: two steps of bilinear x2 upsampling (``align_corners=True``), a 3x3 convolution,
  batch norm and ELU, joined with the encoder's feature of that scale (zero-padded to the
  upsampled size, the odd pixel on the far side; concatenated after the upsampled map), then
  a 3x3 convolution, batch norm and ELU; a 1x1 convolution at the end.

Module and parameter names follow the official state dict (``feature_net`` in the training
checkpoint), so official weights load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .zoo import ModelSpec, register


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, track_running_stats=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False, padding_mode="reflect")
        self.bn1 = _bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False, padding_mode="reflect")
        self.bn2 = _bn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride),
                         *[BasicBlock(cout, cout) for _ in range(blocks - 1)])


class ConvBNELU(nn.Module):
    """3x3 reflect-padded convolution with bias, batch norm, ELU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, padding_mode="reflect")
        self.bn = _bn(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(self.bn(self.conv(x)))


class UpConv(nn.Module):
    """Bilinear x2 (``align_corners=True``), then :class:`ConvBNELU`."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNELU(cin, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def _join(up: Tensor, skip: Tensor) -> Tensor:
    """Zero-pad (or crop) ``skip`` to ``up``'s size, the odd pixel on the far side; concat."""
    dy = up.shape[-2] - skip.shape[-2]
    dx = up.shape[-1] - skip.shape[-1]
    skip = F.pad(skip, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
    return torch.cat([up, skip], dim=1)


class ResUNet(nn.Module):
    """See the module docstring. ``widths``: channels of the stem and the three stages
    (official ``(64, 128, 256)``); ``blocks``: basic blocks per stage (official ``(3, 4, 6)``);
    ``mid``: channels before the last 1x1 convolution (official 32). Smaller values make the
    presets of our own weights (:data:`PRESETS`)."""

    def __init__(self, in_ch: int = 4, out_ch: int = 32, widths: tuple[int, int, int] = (64, 128, 256),
                 blocks: tuple[int, int, int] = (3, 4, 6), mid: int = 32):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1 = nn.Conv2d(in_ch, w1, 7, 2, 3, bias=False, padding_mode="reflect")
        self.bn1 = _bn(w1)
        self.layer1 = _stage(w1, w1, blocks[0], 1)
        self.layer2 = _stage(w1, w2, blocks[1], 2)
        self.layer3 = _stage(w2, w3, blocks[2], 2)
        self.upconv3 = UpConv(w3, w2)
        self.iconv3 = ConvBNELU(2 * w2, w2)
        self.upconv2 = UpConv(w2, w1)
        self.iconv2 = ConvBNELU(2 * w1, mid)
        self.out_conv = nn.Conv2d(mid, out_ch, 1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        return x1, x2, self.layer3(x2)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2, x3 = self.encode(x)
        x = self.iconv3(_join(self.upconv3(x3), x2))
        x = self.iconv2(_join(self.upconv2(x), x1))
        return self.out_conv(x)


#: Constructor arguments of the feature network by preset name: the official configuration
#: and the smaller ones our own weights use.
PRESETS = {
    "official": dict(out_ch=32, widths=(64, 128, 256), blocks=(3, 4, 6), mid=32),
    "base": dict(out_ch=16, widths=(32, 64, 128), blocks=(2, 2, 2), mid=16),
    "small": dict(out_ch=8, widths=(16, 32, 64), blocks=(1, 1, 1), mid=16),
}


register(ModelSpec("feature_net", lambda: ResUNet(in_ch=4, out_ch=32), "model_150000.pth",
                   container_key="feature_net",
                   description="3D Cinemagraphy feature network (training checkpoint entry "
                               "'feature_net')"))
