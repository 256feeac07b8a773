"""The 3D-Photo inpainting networks against the conformance data made from the original modules."""

import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.models import create
from cinemagraph.models.inpaint_nets import InpaintColorNet, InpaintDepthNet

from .conformance import Reference

NETS = {"inpaint_depth_net": (InpaintDepthNet, "in_depth", "depth-model.pth", 51_563_669),
        "inpaint_color_net": (InpaintColorNet, "in_rgb", "color-model.pth", 51_578_579)}


@pytest.mark.parametrize("name", list(NETS))
def test_element_count_of_the_official_layout(name):
    cls, _, _, elements = NETS[name]
    assert sum(v.numel() for v in cls().state_dict().values()) == elements


@pytest.mark.parametrize("name", list(NETS))
def test_official_file_reproduces_the_original_outputs(name, tmp_path):
    cls, x_key, file, _ = NETS[name]
    ref = Reference(name)
    keys = ref.keys
    state = cls().state_dict()
    assert list(state) == list(keys)
    assert {k: list(v.shape) for k, v in state.items()} == keys
    weights = ref.weights()
    path = tmp_path / file
    torch.save(weights, path)  # a plain state dict, as the official files are
    model = create(name, checkpoint=path)
    assert not model.training
    for suffix in ("", "_b"):  # 128x128, and 100x120 (padded to 128x128 and cropped back)
        args = [ref[f"{k}{suffix}"] for k in ("in_holes", "in_context", x_key, "in_edge")]
        with torch.no_grad():
            y = model.forward_3p(*args)
            # enc_7, the 1x1 bottleneck of the padded input
            inputs = torch.cat([args[2], args[3], args[1], args[0]], dim=1)
            h, w = inputs.shape[-2:]
            ph, pw = 128 - h, 128 - w
            inputs = torch.nn.functional.pad(inputs, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            mask = (inputs[:, -2:-1] + inputs[:, -1:]).clamp(0, 1)
            enc7 = model.encode(inputs, mask)[-1][0]
        ref.assert_close(f"out_y{suffix}", y, 1e-4, 2e-5)
        ref.assert_close(f"mid_enc7{suffix}", enc7, 1e-4, 2e-5)


def test_a_mask_kernel_that_is_not_ones_is_refused(tmp_path):
    state = InpaintColorNet().state_dict()
    state["enc_3.conv.mask_conv.weight"] = state["enc_3.conv.mask_conv.weight"] * 0.5
    path = tmp_path / "color-model.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match="not all ones"):
        create("inpaint_color_net", checkpoint=path)


def test_partial_convolution_equals_the_masked_convolution_definition():
    """The box-count shortcut against the definition with a full all-ones mask convolution."""
    from cinemagraph.models.inpaint_nets import PartialConv

    g = torch.Generator().manual_seed(0)
    conv = PartialConv(5, 7, 3, 2, 1, bias=True)
    with torch.no_grad():
        conv.input_conv.weight.copy_(torch.randn(conv.input_conv.weight.shape, generator=g))
        conv.input_conv.bias.copy_(torch.randn(7, generator=g))
    a, b = torch.randn(1, 3, 9, 11, generator=g), torch.randn(1, 2, 9, 11, generator=g)
    ma = (torch.rand(1, 1, 9, 11, generator=g) > 0.6).float()
    mb = (torch.rand(1, 1, 9, 11, generator=g) > 0.3).float()
    mb[..., :4, :5] = 0
    ma[..., :4, :5] = 0  # a region with no known input at all
    with torch.no_grad():
        out, mask = conv([(a, ma), (b, mb)])
        full = torch.cat([ma.expand(-1, 3, -1, -1), mb.expand(-1, 2, -1, -1)], 1)
        raw = torch.nn.functional.conv2d(torch.cat([a, b], 1) * full, conv.input_conv.weight,
                                         conv.input_conv.bias, 2, 1)
        count = torch.nn.functional.conv2d(full, torch.ones(7, 5, 3, 3), None, 2, 1)
        bias = conv.input_conv.bias.view(1, -1, 1, 1)
        expected = torch.where(count > 0, (raw - bias) * 45 / count.clamp_min(1) + bias,
                               torch.zeros_like(raw))
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(mask.expand_as(count), (count > 0).float())
    assert (mask == 0).any() and (mask == 1).any()
