"""The Eulerian motion network of 3D Cinemagraphy (``SPADEUnetMaskMotion``), official layout.

A U-Net whose encoder and decoder normalise with SPADE (Park et al. 2019) conditioned on the
network input, predicting a motion field (pixels per frame) from a photo, the mask of the
moving region and a sparse hint map:

* input ``cat([image (B, 3, H, W) in [-1, 1], mask (B, 1, H, W) in [0, 1], hint (B, 2, H, W)
  in pixels])``, ``H`` and ``W`` multiples of 256 (eight stride-2 convolutions; the original
  runs at 768x768); output ``(B, 2, H, W)`` motion in pixels per frame at that grid, no
  activation;
* encoder: spectral-norm 4x4 stride-2 convolutions 6 -> 32 -> 64 -> 128 -> 256 (x5); after
  each but the first and last, SPADE; LeakyReLU 0.2 before each but the first;
* decoder: the deepest feature ReLU'd and upsampled, then seven times ``[up x2(d), up x2(skip)]``
  concatenated, ReLU, a spectral-norm 3x3 convolution and SPADE; the last 3x3 convolution
  (64 -> 2) has no norm;
* SPADE: parameter-free instance norm, then ``(1 + gamma) * x + beta``, with ``gamma`` and
  ``beta`` from a small conv net on the network input resized to the feature's size (RGB and
  hint bilinear, the mask nearest).

Quirk kept for fidelity: every x2 upsampling in the decoder treats channel 3 of the tensor it
upsamples as the mask (nearest) and every other channel bilinearly, though there the
channels are features, not RGB / mask / hint. The trained weights expect it.

Spectral norm is stored as the original's ``weight_orig``, ``weight_u``, ``weight_v`` (the
layout of ``torch.nn.utils.spectral_norm``). The effective weight is ``W / sigma`` with
``sigma = u . (W v)``. In eval mode the stored ``u`` and ``v`` are used as they are; in train
mode each forward first does one power iteration (``v = normalize(W^T u)``, ``u =
normalize(W v)``) and writes them back. The official demo never calls ``eval()`` on this
network, so it runs in train mode: each call nudges the stored vectors. With trained
weights they have converged, and the two modes agree closely; :class:`MotionNet` defaults to
eval mode (deterministic: the same photo gives the same motion on every call), and
``train()`` reproduces the demo exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .zoo import ModelSpec, register


class SNConv2d(nn.Module):
    """A convolution with spectral norm, keys ``bias``, ``weight_orig``, ``weight_u``,
    ``weight_v`` (in that order, as the original's state dict lists them)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 eps: float = 1e-12):
        super().__init__()
        self.stride, self.padding, self.eps = stride, padding, eps
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_orig = nn.Parameter(torch.empty(out_ch, in_ch, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)
        bound = 1.0 / (in_ch * kernel * kernel) ** 0.5
        nn.init.uniform_(self.bias, -bound, bound)
        self.register_buffer("weight_u", F.normalize(torch.randn(out_ch), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(in_ch * kernel * kernel), dim=0,
                                                     eps=eps))

    def sigma(self) -> Tensor:
        """Return ``u . (W v)``, after one power iteration in train mode (which updates the
        stored vectors)."""
        w = self.weight_orig.flatten(1)
        if self.training:
            with torch.no_grad():
                v = F.normalize(w.t() @ self.weight_u, dim=0, eps=self.eps)
                u = F.normalize(w @ v, dim=0, eps=self.eps)
                self.weight_v.copy_(v)
                self.weight_u.copy_(u)
        u, v = self.weight_u.clone(), self.weight_v.clone()
        return torch.dot(u, w @ v)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_orig / self.sigma()
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


def resize_like_input(seg: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize the 6-channel network input as SPADE does: RGB and hint bilinear
    (``align_corners=False``), the mask (channel 3) nearest."""
    if tuple(seg.shape[-2:]) == tuple(size):
        return seg
    smooth = F.interpolate(seg, size=size, mode="bilinear", align_corners=False)
    mask = F.interpolate(seg[:, 3:4], size=size, mode="nearest")
    return torch.cat([smooth[:, :3], mask, smooth[:, 4:]], dim=1)


def up2(x: Tensor) -> Tensor:
    """The decoder's x2 upsampling: bilinear, channel 3 nearest (the quirk, module docstring)."""
    smooth = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    if x.shape[1] <= 3:
        return smooth
    near = F.interpolate(x[:, 3:4], scale_factor=2, mode="nearest")
    return torch.cat([smooth[:, :3], near, smooth[:, 4:]], dim=1)


class SPADE(nn.Module):
    def __init__(self, channels: int, label_channels: int = 6, hidden: int = 128):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: Tensor, seg: Tensor) -> Tensor:
        normalised = F.instance_norm(x, eps=1e-5)
        actv = self.mlp_shared(resize_like_input(seg, tuple(x.shape[-2:])))
        return normalised * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEUnet(nn.Module):
    """``motion_predictor``: see the module docstring."""

    def __init__(self, in_ch: int = 6, out_ch: int = 2):
        super().__init__()
        enc = [in_ch, 32, 64, 128, 256, 256, 256, 256, 256]
        for i in range(1, 9):
            setattr(self, f"conv{i}", SNConv2d(enc[i - 1], enc[i], 4, 2, 1))
        dec = [(256, 256), (512, 256), (512, 256), (512, 256), (512, 128), (256, 64), (128, 32),
               (64, out_ch)]
        for i, (cin, cout) in enumerate(dec, 1):
            setattr(self, f"dconv{i}", SNConv2d(cin, cout, 3, 1, 1))
        # Declared in the official order.
        self.spade_layer = SPADE(32)
        self.spade_layer2_0 = SPADE(64)
        self.spade_layer2_1 = SPADE(64)
        self.spade_layer4_0 = SPADE(128)
        self.spade_layer4_1 = SPADE(128)
        for i in range(8):
            setattr(self, f"spade_layer8_{i}", SPADE(256))

    def forward(self, x: Tensor, taps: dict | None = None) -> Tensor:
        """Run on the 6-channel input; ``taps``, if given, receives intermediate features
        (``e1``, ``e8``, ``d4``, ``d7``) for checking against the original."""
        lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        encoder_norms = [None, self.spade_layer2_0, self.spade_layer4_0, self.spade_layer8_0,
                         self.spade_layer8_1, self.spade_layer8_2, self.spade_layer8_3]
        e = [self.conv1(x)]
        for k in range(2, 8):
            e.append(encoder_norms[k - 1](getattr(self, f"conv{k}")(lrelu(e[-1])), x))
        e8 = self.conv8(lrelu(e[-1]))
        d = self.spade_layer8_4(self.dconv1(up2(F.relu(e8))), x)
        decoder = [(e[6], self.dconv2, self.spade_layer8_5), (e[5], self.dconv3, self.spade_layer8_6),
                   (e[4], self.dconv4, self.spade_layer8_7), (e[3], self.dconv5, self.spade_layer4_1),
                   (e[2], self.dconv6, self.spade_layer2_1), (e[1], self.dconv7, self.spade_layer)]
        ds = [d]
        for skip, conv, norm in decoder:
            d = norm(conv(F.relu(torch.cat([up2(d), up2(skip)], dim=1))), x)
            ds.append(d)
        out = self.dconv8(F.relu(torch.cat([up2(d), up2(e[0])], dim=1)))
        if taps is not None:
            taps.update(e1=e[0], e8=e8, d4=ds[3], d7=ds[6])
        return out


class MotionNet(nn.Module):
    """``SPADEUnetMaskMotion``: holds ``motion_predictor`` (the official key prefix).

    ``forward(image, mask, hint)``: ``image (B, 3, H, W)`` in ``[-1, 1]``, ``mask (B, 1, H, W)``,
    ``hint (B, 2, H, W)`` in pixels per frame at this grid (zero outside the mask); returns
    the motion ``(B, 2, H, W)`` (``div_flow`` is 1). Eval mode after construction.
    """

    def __init__(self):
        super().__init__()
        self.motion_predictor = SPADEUnet()
        self.eval()

    def forward(self, image: Tensor, mask: Tensor, hint: Tensor) -> Tensor:
        return self.motion_predictor(torch.cat([image, mask, hint], dim=1))

    def spectral_convs(self) -> list[SNConv2d]:
        """The spectral-norm convolutions in the order conv1..conv8, dconv1..dconv8."""
        p = self.motion_predictor
        return [getattr(p, f"conv{i}") for i in range(1, 9)] + \
               [getattr(p, f"dconv{i}") for i in range(1, 9)]


register(ModelSpec("motion_net", MotionNet, "sceneflow_model.pth", container_key="netG",
                   description="3D Cinemagraphy Eulerian motion network (SPADE U-Net; "
                               "checkpoint entry 'netG', keys 'motion_predictor.*')"))
