"""The image decoder against the conformance data made from the original module."""

import torch

from cinemagraph.models.img_decoder import ImgDecoder

from conftest import shared_path
from .conformance import check_rule_weights, load, relative_errors, rule_weights


def test_state_dict_layout_is_the_official_one():
    # The layout is checked against the shipped key list where it is present; the parameter
    # count (18,891,991) is the README's and holds everywhere.
    model = ImgDecoder()
    assert sum(p.numel() for p in model.parameters()) == 18_891_991
    assert next(iter(model.state_dict())) == "alpha"


def test_outputs_match_the_original_module():
    folder = shared_path("conformance")
    keys, check, data = load(folder, "img_decoder")
    model = ImgDecoder().eval()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    assert list(model.state_dict()) == list(keys)
    weights = rule_weights(keys)
    check_rule_weights(weights, check)
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        assert max(relative_errors(model.blend(data["in_x0"], data["in_x1"], 0.3),
                                   data["mid_blended"])) < 1e-5
        for out, (x0, x1, t) in {"out_y": ("in_x0", "in_x1", 0.3),
                                 "out_y_b": ("in_x0_b", "in_x1_b", 0.3),
                                 "out_y_t0": ("in_x0", "in_x1", 0.0)}.items():
            y = model(data[x0], data[x1], t)
            max_rel, rms_rel = relative_errors(y, data[out])
            assert y.shape == data[out].shape
            assert max_rel <= 1e-4 and rms_rel <= 2e-5, (out, max_rel, rms_rel)
