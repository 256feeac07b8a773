"""The image decoder against the conformance data made from the original module."""

import torch

from cinemagraph.models.img_decoder import ImgDecoder

from .conformance import Reference


def test_state_dict_layout_is_the_official_one():
    # The layout is checked against the official key list in the conformance test; the
    # parameter count (18,891,991) is the README's.
    model = ImgDecoder()
    assert sum(p.numel() for p in model.parameters()) == 18_891_991
    assert next(iter(model.state_dict())) == "alpha"


def test_outputs_match_the_original_module():
    ref = Reference("img_decoder")
    keys = ref.keys
    model = ImgDecoder().eval()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys
    assert list(model.state_dict()) == list(keys)
    model.load_state_dict(ref.weights(), strict=True)
    with torch.no_grad():
        ref.assert_close("mid_blended", model.blend(ref["in_x0"], ref["in_x1"], 0.3), 1e-5, 1e-5)
        for out, (x0, x1, t) in {"out_y": ("in_x0", "in_x1", 0.3),
                                 "out_y_b": ("in_x0_b", "in_x1_b", 0.3),
                                 "out_y_t0": ("in_x0", "in_x1", 0.0)}.items():
            ref.assert_close(out, model(ref[x0], ref[x1], t), 1e-4, 2e-5)
