"""The feature network against the conformance data made from the original module."""

import torch

from cinemagraph.models import create

from conftest import shared_path
from .conformance import check_rule_weights, load, relative_errors, rule_weights


def test_parameter_count_and_no_buffers():
    model = create("feature_net")
    assert sum(p.numel() for p in model.parameters()) == 8_875_968
    assert not list(model.buffers())  # batch norms use the batch's statistics, always


def test_outputs_match_the_original_module(tmp_path):
    folder = shared_path("conformance")
    keys, check, data = load(folder, "feature_net")
    weights = rule_weights(keys)
    check_rule_weights(weights, check)
    path = tmp_path / "model_150000.pth"
    torch.save({"feature_net": weights, "img_decoder": {}, "optimizer": {}}, path)
    model = create("feature_net", checkpoint=path)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    assert list(model.state_dict()) == list(keys)
    with torch.no_grad():
        outputs = {"out_y": model(data["in_x"]), "out_y_b": model(data["in_x_b"]),
                   "mid_layer3": model.encode(data["in_x"])[2],
                   "out_y_first_alone": model(data["in_x"][:1])}
    for name, y in outputs.items():
        assert y.shape == data[name].shape, name
        max_rel, rms_rel = relative_errors(y, data[name])
        assert max_rel <= 1e-4 and rms_rel <= 2e-5, (name, max_rel, rms_rel)
