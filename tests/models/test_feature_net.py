"""The feature network against the conformance data made from the original module."""

import torch

from cinemagraph.models import create

from .conformance import Reference


def test_parameter_count_and_no_buffers():
    model = create("feature_net")
    assert sum(p.numel() for p in model.parameters()) == 8_875_968
    assert not list(model.buffers())  # batch norms use the batch's statistics, always


def test_outputs_match_the_original_module(tmp_path):
    ref = Reference("feature_net")
    keys = ref.keys
    path = tmp_path / "model_150000.pth"
    torch.save({"feature_net": ref.weights(), "img_decoder": {}, "optimizer": {}}, path)
    model = create("feature_net", checkpoint=path)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    assert list(model.state_dict()) == list(keys)
    with torch.no_grad():
        outputs = {"out_y": model(ref["in_x"]), "out_y_b": model(ref["in_x_b"]),
                   "mid_layer3": model.encode(ref["in_x"])[2],
                   "out_y_first_alone": model(ref["in_x"][:1])}
    for name, y in outputs.items():
        ref.assert_close(name, y, 1e-4, 2e-5)


def test_point_features_of_any_size_line_up_with_the_layers():
    """The feature network halves its input four times; an LDI whose sides are not multiples
    of 16 is padded (edge rows repeated) before it and the features cropped after, so they stay
    aligned with the pixels. An image whose last rows repeat its row 51 has the same features
    at 52 rows (padded back to 64) as at 64."""
    import torch.nn.functional as F

    from cinemagraph.ldi.scene import LayeredDepthImage
    from cinemagraph.spacetime import SpaceTimeModel

    torch.manual_seed(0)
    model = SpaceTimeModel("small").eval()
    color = F.interpolate(torch.rand(2, 3, 16, 16), size=(64, 64), mode="bicubic",
                          align_corners=False).clamp(0, 1)
    color[..., 51:, :] = color[..., 51:52, :]

    def ldi(h):
        ones = torch.ones(2, 1, h, 64)
        return LayeredDepthImage(color=color[..., :h, :], depth=ones, visible=ones.bool(),
                                 coverage=ones, depth_field=ones, flow=torch.zeros(2, 2, h, 64))

    with torch.no_grad():
        full, cut = model.features(ldi(64)), model.features(ldi(52))
    assert cut.shape[-2:] == (52, 64)
    assert torch.allclose(cut, full[..., :52, :], atol=1e-5)
