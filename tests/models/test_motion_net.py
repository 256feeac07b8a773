"""The motion network against the conformance data made from the original module."""

import pytest
import torch

from cinemagraph.models import create
from cinemagraph.models.motion_net import MotionNet

from .conformance import Reference


def test_parameter_count_of_the_official_model():
    assert sum(p.numel() for p in MotionNet().parameters()) == 15_565_826


@pytest.fixture(scope="module")
def conformance(tmp_path_factory):
    ref = Reference("motion_net")
    weights = ref.weights()
    path = tmp_path_factory.mktemp("motion") / "sceneflow_model.pth"
    # The official container: the generator's state dict under 'netG', with other entries.
    torch.save({"netG": weights, "netD": {"x": torch.zeros(1)}, "epoch": 3}, path)
    return ref.keys, ref, path


def test_layout_equals_the_official_key_list(conformance):
    keys = conformance[0]
    state = MotionNet().state_dict()
    assert list(state) == list(keys)
    assert {k: list(v.shape) for k, v in state.items()} == keys


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_official_file_reproduces_the_original_outputs(conformance, mode):
    _, ref, path = conformance
    model = create("motion_net", checkpoint=path)
    assert not model.training  # eval after loading: deterministic
    suffix = "" if mode == "eval" else "_train"
    if mode == "train":
        model.train()  # the official demo's mode: one power iteration per call
    x = torch.cat([ref["in_image"], ref["in_mask"], ref["in_hint"]], dim=1)
    taps = {}
    with torch.no_grad():
        flow = model.motion_predictor(x, taps)
        sigma = torch.stack([conv.sigma() for conv in model.spectral_convs()]) \
            if mode == "eval" else None
    checks = {"out_flow": flow, "mid_conv1_e1_first8ch": taps["e1"][:, :8],
              "mid_conv8_e8": taps["e8"], "mid_spade8_7_d4": taps["d4"],
              "mid_spade_d7_first8ch": taps["d7"][:, :8]}
    for name, got in checks.items():
        ref.assert_close(name + suffix, got, 1e-4, 2e-5)
    if mode == "eval":
        ref.assert_close("aux_sigma", sigma, 1e-5, 1e-5)
        assert torch.equal(model(ref["in_image"], ref["in_mask"], ref["in_hint"]), flow)
    else:
        p = model.motion_predictor
        ref.assert_close("aux_conv1_weight_u_after_train", p.conv1.weight_u, 1e-5, 1e-5)
        ref.assert_close("aux_dconv8_weight_u_after_train", p.dconv8.weight_u, 1e-5, 1e-5)
        model.eval()  # sigma from the updated vectors is the one the train-mode call used
        with torch.no_grad():
            sigma = torch.stack([conv.sigma() for conv in model.spectral_convs()])
        ref.assert_close("aux_sigma_train", sigma, 1e-5, 1e-5)
