"""DPT (Ranftl et al. 2021), the depth network of the original pipeline, on timm.

Two official models, ``DPTDepthModel(backbone=..., non_negative=True)`` of the original code
with their official state-dict layouts:

* :class:`DPTHybrid` (``backbone='vitb_rn50_384'``, ``dpt_hybrid-midas-501f0c75.pt``, the one
  3D Cinemagraphy uses): timm's ViT-Hybrid ``vit_base_r50_s16_384`` (a ResNetV2 with layers
  3, 4, 9 and weight-standardised "SAME" convolutions, then ViT-B/16). The decoder takes the
  two ResNet stages and the tokens after blocks 8 and 11.
* :class:`DPTLarge` (``backbone='vitl16_384'``, ``dpt_large-midas-2f21e586.pt``): timm's
  ``vit_large_patch16_384`` (ViT-L/16). The decoder takes the tokens after blocks 5, 11, 17
  and 23, reassembled to 1/4, 1/8, 1/16 and 1/32 of the input.

Under the official names:

* ``pretrained.model``: the timm backbone, built by timm, not copied. Its features are taken
  by :meth:`DPT.forward_features` (like timm's intermediate-feature extraction; no hooks);
* ``pretrained.act_postprocessN``: the "project" readout (the class token concatenated to
  every token, Linear ``2C -> C``, GELU) and the reassembly convolutions (index 3 on: 1x1
  projection, then a transposed convolution up or a strided convolution down);
* ``scratch``: the 3x3 projections to 256 channels, four fusion blocks (residual
  convolution units, bilinear x2 with ``align_corners=True``) and the head.

Input ``(B, 3, H, W)`` normalised to ``[-1, 1]``, ``H`` and ``W`` multiples of 32; output
``(B, H, W)`` relative inverse depth (>= 0). The position embedding's 24x24 grid is resized
bilinearly (``align_corners=False``) to ``(H / 16, W / 16)`` as the original does.

Weight standardisation (the hybrid only): DPT was trained with timm 0.4.5, whose
standardised convolution computes ``(w - mean) / (std + 1e-5)`` (biased std); timm 1.x
computes ``(w - mean) / sqrt(var + 1e-8)`` for this model. Only that differs between the
two, and it moves DPT's output by about 1e-3 relative. The default, ``"timm-0.4.5"``,
reproduces the numbers DPT was trained and published with; ``"timm-1"`` reproduces what the
original repository computes when installed with a recent timm. ViT-L/16 has no
standardised convolutions, so the two timm versions compute the same DPT-Large.

Proof: DPT-Hybrid is checked against conformance data made from the original module
(``tests/depth/test_dpt.py``). No such data exists for DPT-Large; it shares every module
but the backbone with the hybrid, its backbone features are checked against timm's own
``forward_intermediates``, and its layout against the structure of the original code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.zoo import ModelSpec, register


@dataclass(frozen=True)
class Backbone:
    """One of the original's encoders: the timm model, the transformer blocks whose tokens
    feed the decoder (0-based), the channels of the four reassembled maps, and whether the
    first two maps come from a ResNet stem (the hybrid) instead of tokens."""

    timm_name: str
    hooks: tuple[int, ...]
    features: tuple[int, int, int, int]
    vit_features: int
    hybrid: bool


BACKBONES = {
    "vitb_rn50_384": Backbone("vit_base_r50_s16_384", (8, 11), (256, 512, 768, 768), 768, True),
    "vitl16_384": Backbone("vit_large_patch16_384", (5, 11, 17, 23), (256, 512, 1024, 1024),
                           1024, False),
}

#: Transformer blocks of the hybrid whose tokens feed the decoder (after ResNet stages 0, 1).
HOOKS = BACKBONES["vitb_rn50_384"].hooks


def _standardise_like_timm_045(model: nn.Module) -> None:
    """Make every weight-standardised convolution of ``model`` use timm 0.4.5's formula."""
    from timm.layers import StdConv2dSame
    from timm.layers.padding import pad_same

    class StdConv2dSame045(StdConv2dSame):
        def forward(self, x: Tensor) -> Tensor:
            if self.same_pad:
                x = pad_same(x, self.kernel_size, self.stride, self.dilation)
            flat = self.weight.reshape(self.out_channels, -1)
            mean = flat.mean(1, keepdim=True)
            std = flat.std(1, keepdim=True, unbiased=False)
            weight = ((flat - mean) / (std + 1e-5)).reshape_as(self.weight)
            return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)

    for module in model.modules():
        if type(module) is StdConv2dSame:
            module.__class__ = StdConv2dSame045  # same parameters, 0.4.5 arithmetic


class Readout(nn.Module):
    """The "project" readout: ``[tokens, cls] -> Linear -> GELU``."""

    def __init__(self, dim: int = 768):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())

    def forward(self, tokens: Tensor) -> Tensor:
        cls = tokens[:, :1].expand_as(tokens[:, 1:])
        return self.project(torch.cat([tokens[:, 1:], cls], dim=-1))


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        # Declared in the official order (out_conv first), so the state dict lists alike.
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Upsample(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _reassembly(backbone: Backbone, level: int) -> nn.Sequential:
    """``act_postprocess{level + 1}``: readout, two parameter-free reshapes (identities here,
    done in :meth:`DPT._reassemble`), a 1x1 projection and the resampling of ``level``."""
    c, out = backbone.vit_features, backbone.features[level]
    resample = {0: [nn.ConvTranspose2d(out, out, 4, stride=4)],
                1: [nn.ConvTranspose2d(out, out, 2, stride=2)],
                2: [],
                3: [nn.Conv2d(out, out, 3, stride=2, padding=1)]}[level]
    return nn.Sequential(Readout(c), nn.Identity(), nn.Identity(), nn.Conv2d(c, out, 1),
                         *resample)


class _Pretrained(nn.Module):
    """Holds the backbone and the reassembly of tokens, under the official names."""

    def __init__(self, backbone: Backbone, standardisation: str):
        super().__init__()
        import timm

        self.model = timm.create_model(backbone.timm_name, pretrained=False)
        if standardisation == "timm-0.4.5":
            _standardise_like_timm_045(self.model)
        elif standardisation != "timm-1":
            raise ValueError(f"unknown weight standardisation '{standardisation}'")
        first = 2 if backbone.hybrid else 0  # the hybrid's first two maps are ResNet stages
        for level in range(first, 4):
            self.add_module(f"act_postprocess{level + 1}", _reassembly(backbone, level))


class _Scratch(nn.Module):
    def __init__(self, in_features: tuple[int, int, int, int], features: int = 256):
        super().__init__()
        self.layer1_rn = nn.Conv2d(in_features[0], features, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(in_features[1], features, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(in_features[2], features, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(in_features[3], features, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(features)
        self.refinenet2 = FeatureFusionBlock(features)
        self.refinenet3 = FeatureFusionBlock(features)
        self.refinenet4 = FeatureFusionBlock(features)
        self.output_conv = nn.Sequential(
            nn.Conv2d(features, features // 2, 3, padding=1), _Upsample(),
            nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 1, 1),
            nn.ReLU(), nn.Identity())


class DPT(nn.Module):
    """See the module docstring. ``backbone``: a key of :data:`BACKBONES`."""

    def __init__(self, backbone: str = "vitb_rn50_384", standardisation: str = "timm-0.4.5"):
        super().__init__()
        self.backbone = BACKBONES[backbone]
        self.pretrained = _Pretrained(self.backbone, standardisation)
        self.scratch = _Scratch(self.backbone.features)

    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        pos = self.pretrained.model.pos_embed
        side = int((pos.shape[1] - 1) ** 0.5)
        cells = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        cells = F.interpolate(cells, size=grid, mode="bilinear", align_corners=False)
        return torch.cat([pos[:, :1], cells.flatten(2).transpose(1, 2)], dim=1)

    def forward_features(self, x: Tensor) -> tuple[Tensor, ...]:
        """Return the four encoder outputs the decoder reads.

        The hybrid: ResNet stage 0 and 1 outputs and the tokens after blocks 8 and 11.
        DPT-Large: the tokens after blocks 5, 11, 17 and 23. Tokens are ``(B, 1 + N, C)``
        with the class token first, before the final norm.
        """
        vit = self.pretrained.model
        stages: list[Tensor] = []
        if self.backbone.hybrid:
            backbone = vit.patch_embed.backbone
            h = backbone.stem(x)
            stages.append(backbone.stages[0](h))
            stages.append(backbone.stages[1](stages[0]))
            h = vit.patch_embed.proj(backbone.stages[2](stages[1]))
        else:
            h = vit.patch_embed.proj(x)
        grid = h.shape[-2:]
        tokens = torch.cat([vit.cls_token.expand(h.shape[0], -1, -1),
                            h.flatten(2).transpose(1, 2)], dim=1)
        tokens = vit.pos_drop(tokens + self._pos_embed(tuple(grid)))
        hooks = self.backbone.hooks
        taken = {}
        for index, block in enumerate(vit.blocks[: max(hooks) + 1]):
            tokens = block(tokens)
            if index in hooks:
                taken[index] = tokens
        return (*stages, *(taken[i] for i in hooks))

    def _reassemble(self, tokens: Tensor, post: nn.Sequential, grid: tuple[int, int]) -> Tensor:
        x = post[0](tokens).transpose(1, 2).reshape(tokens.shape[0], -1, *grid)
        for layer in post[3:]:
            x = layer(x)
        return x

    def head_pre_relu(self, x: Tensor) -> Tensor:
        """Return the head's output before its last ReLU, ``(B, 1, H, W)``."""
        features = list(self.forward_features(x))
        grid = (x.shape[-2] // 16, x.shape[-1] // 16)
        first = 2 if self.backbone.hybrid else 0
        for level in range(first, 4):
            post = getattr(self.pretrained, f"act_postprocess{level + 1}")
            features[level] = self._reassemble(features[level], post, grid)
        s = self.scratch
        l1, l2, l3, l4 = (s.layer1_rn(features[0]), s.layer2_rn(features[1]),
                          s.layer3_rn(features[2]), s.layer4_rn(features[3]))
        path = s.refinenet4(l4)
        path = s.refinenet3(path, l3)
        path = s.refinenet2(path, l2)
        path = s.refinenet1(path, l1)
        return s.output_conv[:5](path)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.head_pre_relu(x)).squeeze(1)


class DPTHybrid(DPT):
    """DPT-Hybrid, ``dpt_hybrid-midas-501f0c75.pt``."""

    def __init__(self, standardisation: str = "timm-0.4.5"):
        super().__init__("vitb_rn50_384", standardisation)


class DPTLarge(DPT):
    """DPT-Large, ``dpt_large-midas-2f21e586.pt``."""

    def __init__(self):
        super().__init__("vitl16_384", "timm-1")


# --------------------------------------------------------------------------------------
# The depth stage around the network: the original's pre- and post-processing.

#: Network input size the original aims at, and the multiple both sides are rounded to.
NET_SIZE, MULTIPLE = 384, 32


def network_size(height: int, width: int) -> tuple[int, int]:
    """Return the input size of the original's ``Resize(384, 384, keep_aspect_ratio=True,
    ensure_multiple_of=32, resize_method="minimal")``: the scale closer to 1 of the two that
    fit each side to 384, applied to both sides, each rounded to a multiple of 32."""
    scale_h, scale_w = NET_SIZE / height, NET_SIZE / width
    scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
    return (max(MULTIPLE, round(scale * height / MULTIPLE) * MULTIPLE),
            max(MULTIPLE, round(scale * width / MULTIPLE) * MULTIPLE))


#: Names of the DPT models in the model zoo, and how the log names them.
MODELS = {"dpt_hybrid": "DPT hybrid", "dpt_large": "DPT large"}


class DPTDepth:
    """The depth stage on DPT (``model``: ``"dpt_hybrid"``, the original pipeline's, or
    ``"dpt_large"``), as the original pipeline runs it.

    1. Resize the photo to :func:`network_size` (bicubic), normalise to ``[-1, 1]``.
    2. Run DPT: relative inverse depth; resize it back to the photo (bicubic).
    3. As the original reads DPT's output back: min-max normalise the disparity to
       ``[0, 1]`` (the original writes and reads a 16-bit PNG; that quantisation, under
       2e-5, is skipped), 5x5 median filter (the original's ``remove_noise_in_dpt_disparity``,
       ``scipy.ndimage.median_filter`` with reflect borders, here computed on the device,
       :func:`median_filter_5x5`), depth = 1 / max(d, 1e-6).
       The pipeline's :func:`~cinemagraph.depth.base.normalize_depth` then scales it to near
       depth 1 and clamps the far end at 100 (the farthest pixel has disparity 0 here).

    ``dtype`` (``torch.bfloat16`` or ``float16``) and ``channels_last`` are options for GPUs.
    """

    def __init__(self, checkpoint, device=None, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, model: str = "dpt_hybrid"):
        from ..models.zoo import create

        if model not in MODELS:
            raise ValueError(f"unknown DPT model '{model}' (one of {', '.join(MODELS)})")
        self.checkpoint = checkpoint
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.model = create(model, checkpoint=checkpoint).to(self.device, dtype)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.description = f"{MODELS[model]} ({checkpoint})"

    @torch.no_grad()
    def disparity(self, image: Tensor) -> Tensor:
        """Return DPT's relative inverse depth ``(1, 1, H, W)`` at the photo's size, on the
        stage's device."""
        h, w = image.shape[-2:]
        x = F.interpolate(image.float().to(self.device), size=network_size(h, w),
                          mode="bicubic", align_corners=False)
        x = ((x - 0.5) / 0.5).to(self.device, self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x).float()[:, None]
        return F.interpolate(out, size=(h, w), mode="bicubic", align_corners=False)

    def __call__(self, image: Tensor) -> Tensor:
        disparity = self.disparity(image)
        lo, hi = disparity.amin(), disparity.amax()
        disparity = (disparity - lo) / (hi - lo).clamp_min(1e-12)
        depth = 1.0 / median_filter_5x5(disparity).clamp_min(1e-6)
        return depth.to(image.device)


def _pad_symmetric(x: Tensor, p: int) -> Tensor:
    """Pad the last two dims by ``p`` mirroring about the edge, edge included (``d c b a | a b
    c d``, scipy.ndimage's "reflect"; torch's "reflect" leaves the edge out)."""
    x = torch.cat([x[..., :p, :].flip(-2), x, x[..., -p:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :, :p].flip(-1), x, x[..., :, -p:].flip(-1)], dim=-1)


def median_filter_5x5(x: Tensor, rows_per_chunk: int = 256) -> Tensor:
    """Return the 5x5 median of ``x (1, 1, H, W)``, equal to
    ``scipy.ndimage.median_filter(x, size=5)`` (reflect borders), on ``x``'s device."""
    padded = _pad_symmetric(x, 2)
    h = x.shape[-2]
    out = torch.empty_like(x)
    for top in range(0, h, rows_per_chunk):
        rows = min(rows_per_chunk, h - top)
        windows = F.unfold(padded[..., top:top + rows + 4, :], 5)  # (1, 25, rows * W)
        out[..., top:top + rows, :] = windows.median(dim=1).values.view(1, 1, rows, -1)
    return out


register(ModelSpec("dpt_hybrid", DPTHybrid, "dpt_hybrid-midas-501f0c75.pt",
                   description="DPT-Hybrid (ViT-Hybrid on timm), relative inverse depth"))
register(ModelSpec("dpt_large", DPTLarge, "dpt_large-midas-2f21e586.pt",
                   description="DPT-Large (ViT-L/16 on timm), relative inverse depth"))
