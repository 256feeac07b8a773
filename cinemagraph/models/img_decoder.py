"""The image decoder of 3D Cinemagraphy (``ImgDecoder(in_ch=37, out_ch=3)``), official layout.

It takes the forward and backward splatted feature maps of a frame and the frame's time
``t = frame / N``, blends them inside the module and decodes the blend to RGB:

* ``x0, x1``: ``(B, 37, H, W)``: channels 0-2 RGB, 3 accumulated alpha, 4-35 features,
  36 normalised disparity in ``[0, 1]``; ``H`` and ``W`` multiples of 16.
* blend: ``w0 = (1 - t) exp(alpha d0) a0``, ``w1 = t exp(alpha d1) a1`` with the learnable
  scalar ``alpha``; ``x = (w0 x0 + w1 x1) / max(w0 + w1, 1e-6)``, all 37 channels.
* a U-Net: a 7x7 convolution (zero padding, no bias) and PReLU; four max-pool + double
  convolution stages (3x3 reflect-padded convolutions, GroupNorm with 32 channels a group,
  PReLU with one slope), each returning both of its blocks' outputs; a fifth double
  convolution without pooling; four up stages that concatenate both outputs of their
  encoder stage; a last bilinear upsampling, concatenation with the first feature map, a
  3x3 convolution and a sigmoid.

Module and parameter names follow the official state dict (``img_decoder`` in the
space-time checkpoint), so official weights load with ``strict=True``. The first up stage
reproduces the original's quirk: its skip has the same resolution as its input, so the
upsampled map is centre-cropped back (a negative "pad", floor division on the first side).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .zoo import ModelSpec, register


def _block(cin: int, cout: int) -> nn.Sequential:
    """3x3 reflect-padded convolution with bias, GroupNorm (32 channels a group, at least
    one group), PReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect"),
                         nn.GroupNorm(max(1, cout // 32), cout), nn.PReLU())


class DoubleConv(nn.Module):
    """Two blocks; returns both outputs."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.double_conv1 = _block(cin, cout)
        self.double_conv2 = _block(cout, cout)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first = self.double_conv1(x)
        return first, self.double_conv2(first)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.maxpool_conv[1](self.maxpool_conv[0](x))


class _UpConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.double_conv1 = _block(cin, mid)
        self.double_conv2 = _block(2 * mid, cout)


def _pad_or_crop(x: Tensor, like: Tensor) -> Tensor:
    """Reflect-pad ``x`` to ``like``'s size, or crop it where the difference is negative,
    with the original's split ``[d // 2, d - d // 2]`` (Python floor division)."""
    dy = like.shape[-2] - x.shape[-2]
    dx = like.shape[-1] - x.shape[-1]
    pads = [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2]
    if min(pads) < 0:
        left, right, top, bottom = (max(-p, 0) for p in pads)
        x = x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]
        pads = [max(p, 0) for p in pads]
    if max(pads) > 0:
        x = F.pad(x, pads, mode="reflect")
    return x


class Up(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int):
        super().__init__()
        self.conv = _UpConv(cin, mid, cout)

    def forward(self, x: Tensor, skip1: Tensor, skip2: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        x = _pad_or_crop(x, skip1)
        x = self.conv.double_conv1(torch.cat([skip1, x], dim=1))
        return self.conv.double_conv2(torch.cat([skip2, x], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")

    def forward(self, x: Tensor, first: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.sigmoid(self.conv(torch.cat([first, x], dim=1)))


class ImgDecoder(nn.Module):
    """See the module docstring. ``forward(x0, x1, t, extra=None)`` returns RGB
    ``(B, 3, H, W)``; ``extra`` ``(B, extra_ch, H, W)`` joins the blend before the U-Net
    (our residual presets pass the composite they correct)."""

    def __init__(self, in_ch: int = 37, out_ch: int = 3, base: int = 32, extra_ch: int = 0):
        """``base``: channels of the first map (official 32); every stage doubles it.
        ``extra_ch``: channels appended after the blend (``forward``'s ``extra``), none in
        the official layout."""
        super().__init__()
        c = [base * 2 ** i for i in range(5)]  # 32, 64, 128, 256, 512 officially
        self.in_ch, self.extra_ch = in_ch, extra_ch
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.firstconv = nn.Conv2d(in_ch + extra_ch, c[0], 7, padding=3, bias=False)
        self.firstprelu = nn.PReLU()
        self.down1 = Down(c[0], c[1])
        self.down2 = Down(c[1], c[2])
        self.down3 = Down(c[2], c[3])
        self.down4 = Down(c[3], c[4])
        self.conv5 = DoubleConv(c[4], c[4])
        self.up1 = Up(2 * c[4], c[4], c[3])
        self.up2 = Up(2 * c[3], c[3], c[2])
        self.up3 = Up(2 * c[2], c[2], c[1])
        self.up4 = Up(2 * c[1], c[1], c[0])
        self.outc = OutConv(2 * c[0], out_ch)

    def blend(self, x0: Tensor, x1: Tensor, t: float) -> Tensor:
        """Return the symmetric blend of the two splatted maps at time ``t`` (the last
        channel is the disparity, channel 3 the alpha)."""
        w0 = (1.0 - t) * torch.exp(self.alpha * x0[:, -1:]) * x0[:, 3:4]
        w1 = t * torch.exp(self.alpha * x1[:, -1:]) * x1[:, 3:4]
        total = (w0 + w1).clamp_min(1e-6)
        return (w0 / total) * x0 + (w1 / total) * x1

    def forward(self, x0: Tensor, x1: Tensor, t: float, extra: Tensor | None = None) -> Tensor:
        x = self.blend(x0, x1, t)
        if self.extra_ch:
            x = torch.cat([x, extra], dim=1)
        first = self.firstprelu(self.firstconv(x))
        x20, x21 = self.down1(first)
        x30, x31 = self.down2(x21)
        x40, x41 = self.down3(x31)
        x50, x51 = self.down4(x41)
        _, x61 = self.conv5(x51)
        x = self.up1(x61, x51, x50)
        x = self.up2(x, x41, x40)
        x = self.up3(x, x31, x30)
        x = self.up4(x, x21, x20)
        return self.outc(x, first)


register(ModelSpec("img_decoder", lambda: ImgDecoder(in_ch=37, out_ch=3), "model_150000.pth",
                   container_key="img_decoder",
                   description="3D Cinemagraphy image decoder (training checkpoint entry "
                               "'img_decoder')"))
