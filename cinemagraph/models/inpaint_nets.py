"""The inpainting networks of 3D Photo Inpainting (Shih et al. 2020), as 3D Cinemagraphy uses them.

``InpaintDepthNet`` (``depth-model.pth``) and ``InpaintColorNet`` (``color-model.pth``) are
partial-convolution U-Nets (Liu et al. 2018) in the official state-dict layout: seven
encoder layers (7x7, 5x5, 5x5, then 3x3 at 512 channels, each stride 2), seven decoder
layers (nearest x2, concatenation with the encoder feature of the same size, 3x3 partial
convolution, LeakyReLU 0.2), eval-mode batch norm everywhere but the first and the last
layer. The depth network predicts zero-mean log depth; the colour network ends in a sigmoid.

Partial convolution. With the input mask ``m`` (1 = known), ``out = conv(x * m)`` and
``M = conv_ones(m)`` (the number of known inputs in the window, over all input channels);
where ``M > 0`` the output is rescaled, ``(out - b) * (C_in k^2) / M + b``, and the new mask
is 1 on every output channel; where ``M = 0`` both are 0.

The official modules compute ``M`` with a stored all-ones convolution (``mask_conv.weight``,
kept in the layout and checked to be all ones when weights load) as wide as the layer
itself, which doubles the arithmetic. Here the mask is carried as one channel per
concatenated part, constant over that part's channels (as it is: the network's input mask
is repeated over its channels, and each partial convolution's new mask is the same on all
its outputs), so ``M`` is a sum of one-channel box counts: exact (integers below 2^24 in
float32) and a fraction of the cost.

``forward_3p(holes, context, x, edge)`` is the call of the original pipeline: the input is
``cat([x, edge, context, holes])``, its mask ``clamp(context + holes, 0, 1)``; it is zero-padded
to a multiple of 128 at offset ``(residual // 2)`` on each side and cropped back.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .zoo import ModelSpec, register

from ..errors import UserError

#: Parts of a tensor with their masks: (channels, mask (B, 1, H, W) of 0/1).
Parts = list[tuple[Tensor, Tensor]]


class PartialConv(nn.Module):
    """A partial convolution under the official names ``input_conv`` and ``mask_conv``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False):
        super().__init__()
        self.input_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                    bias=bias)
        self.mask_conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                   bias=False)
        nn.init.ones_(self.mask_conv.weight)
        self.mask_conv.weight.requires_grad_(False)

    def forward(self, parts: Parts) -> tuple[Tensor, Tensor]:
        """Return the output and its one-channel mask for the concatenation of ``parts``."""
        conv = self.input_conv
        k, s, p = conv.kernel_size[0], conv.stride, conv.padding
        x = torch.cat([v * m for v, m in parts], dim=1) if len(parts) > 1 else parts[0][0] * parts[0][1]
        ones = torch.ones(1, 1, k, k, dtype=x.dtype, device=x.device)
        count = sum(v.shape[1] * F.conv2d(m, ones, stride=s, padding=p) for v, m in parts)
        out = F.conv2d(x, conv.weight, None, s, p)
        known = count > 0
        scale = torch.where(known, (conv.in_channels * k * k) / count.clamp_min(1.0),
                            torch.zeros_like(count))
        out = out * scale
        if conv.bias is not None:
            out = out + conv.bias.view(1, -1, 1, 1) * known
        return out, known.to(x.dtype)


class PCBActiv(nn.Module):
    """Partial convolution, eval-mode batch norm (optional), activation (optional)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 bn: bool = True, activation: str | None = "relu", bias: bool = False):
        super().__init__()
        self.conv = PartialConv(in_ch, out_ch, kernel, stride, kernel // 2, bias=bias)
        if bn:
            self.bn = nn.BatchNorm2d(out_ch)
        self.activation = activation

    def forward(self, parts: Parts) -> tuple[Tensor, Tensor]:
        h, mask = self.conv(parts)
        if hasattr(self, "bn"):
            h = self.bn(h)
        if self.activation == "relu":
            h = F.relu(h)
        elif self.activation == "leaky":
            h = F.leaky_relu(h, 0.2)
        return h, mask


class _PartialUNet(nn.Module):
    """The shared structure; subclasses declare the layers in the official order."""

    in_channels: int
    decoder_names: tuple[str, ...]  # dec for k = 7 .. 1
    final_sigmoid: bool

    def _make_encoder(self, in_ch: int, bias: tuple[bool, bool]) -> None:
        self.enc_1 = PCBActiv(in_ch, 64, 7, 2, bn=False, bias=bias[0])
        self.enc_2 = PCBActiv(64, 128, 5, 2, bias=bias[1])
        self.enc_3 = PCBActiv(128, 256, 5, 2)
        self.enc_4 = PCBActiv(256, 512, 3, 2)
        for i in range(5, 8):
            setattr(self, f"enc_{i}", PCBActiv(512, 512, 3, 2))

    def encode(self, x: Tensor, mask: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Return ``[(input, mask), (enc_1, mask), ..., (enc_7, mask)]``."""
        features = [(x, mask)]
        for i in range(1, 8):
            features.append(getattr(self, f"enc_{i}")([features[-1]]))
        return features

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run on ``x (B, C, H, W)`` with the one-channel input mask ``mask (B, 1, H, W)``;
        ``H`` and ``W`` multiples of 128."""
        features = self.encode(x, mask)
        h, h_mask = features[-1]
        for k, name in zip(range(7, 0, -1), self.decoder_names):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h_mask = F.interpolate(h_mask, scale_factor=2, mode="nearest")
            h, h_mask = getattr(self, name)([(h, h_mask), features[k - 1]])
        return torch.sigmoid(h) if self.final_sigmoid else h

    def forward_3p(self, holes: Tensor, context: Tensor, x: Tensor, edge: Tensor,
                   unit_length: int = 128) -> Tensor:
        """The original pipeline's call (``forward_3P``): see the module docstring."""
        inputs = torch.cat([x, edge, context, holes], dim=1)
        h, w = inputs.shape[-2:]
        ph = math.ceil(h / unit_length) * unit_length - h
        pw = math.ceil(w / unit_length) * unit_length - w
        inputs = F.pad(inputs, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        mask = (inputs[:, -2:-1] + inputs[:, -1:]).clamp(0.0, 1.0)
        out = self(inputs, mask)
        return out[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]

    def check_mask_kernels(self) -> None:
        """Raise if a stored ``mask_conv.weight`` is not all ones (the computation assumes it)."""
        for name, module in self.named_modules():
            if isinstance(module, PartialConv) and not bool((module.mask_conv.weight == 1).all()):
                raise UserError(f"{name}.mask_conv.weight is not all ones: this is not a 3D "
                                "Photo inpainting checkpoint")


class InpaintDepthNet(_PartialUNet):
    """``Inpaint_Depth_Net``: input ``[log depth, edge, context, holes]`` (4 channels)."""

    in_channels = 4
    decoder_names = ("dec_7", "dec_6", "dec_5", "dec_4", "dec_3", "dec_2", "dec_1")
    final_sigmoid = False

    def __init__(self):
        super().__init__()
        self._make_encoder(4, bias=(True, True))
        # Official order: dec_5, dec_6, dec_7 (made in a loop), then dec_4 .. dec_1.
        for i in range(5, 8):
            setattr(self, f"dec_{i}", PCBActiv(1024, 512, activation="leaky"))
        self.dec_4 = PCBActiv(512 + 256, 256, activation="leaky")
        self.dec_3 = PCBActiv(256 + 128, 128, activation="leaky")
        self.dec_2 = PCBActiv(128 + 64, 64, activation="leaky")
        self.dec_1 = PCBActiv(64 + 4, 1, bn=False, activation=None, bias=True)


class InpaintColorNet(_PartialUNet):
    """``Inpaint_Color_Net``: input ``[rgb, edge, context, holes]`` (6 channels), sigmoid out."""

    in_channels = 6
    decoder_names = ("dec_7", "dec_6", "dec_5A", "dec_4A", "dec_3A", "dec_2A", "dec_1A")
    final_sigmoid = True

    def __init__(self):
        super().__init__()
        self._make_encoder(6, bias=(False, False))
        self.dec_7 = PCBActiv(1024, 512, activation="leaky")
        self.dec_6 = PCBActiv(1024, 512, activation="leaky")
        self.dec_5A = PCBActiv(1024, 512, activation="leaky")
        self.dec_4A = PCBActiv(512 + 256, 256, activation="leaky")
        self.dec_3A = PCBActiv(256 + 128, 128, activation="leaky")
        self.dec_2A = PCBActiv(128 + 64, 64, activation="leaky")
        self.dec_1A = PCBActiv(64 + 6, 3, bn=False, activation=None, bias=True)


def _check_mask_kernels(module: nn.Module) -> None:
    module.check_mask_kernels()


register(ModelSpec("inpaint_depth_net", InpaintDepthNet, "depth-model.pth",
                   check=_check_mask_kernels,
                   description="3D Photo Inpainting depth network (partial-convolution U-Net), "
                               "zero-mean log depth"))
register(ModelSpec("inpaint_color_net", InpaintColorNet, "color-model.pth",
                   check=_check_mask_kernels,
                   description="3D Photo Inpainting colour network (partial-convolution U-Net)"))
