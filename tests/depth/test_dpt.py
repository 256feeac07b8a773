"""DPT-Hybrid against the conformance data made from the original module (timm 0.4.5 and 1.x)."""

import pytest
import torch

from cinemagraph.depth.dpt import DPTHybrid
from cinemagraph.models import create

from models.conformance import Reference


def test_parameter_count_of_the_official_model():
    model = DPTHybrid()
    state = model.state_dict()
    assert len(state) == 368
    assert sum(v.numel() for v in state.values()) == 123_146_985


@pytest.fixture(scope="module")
def conformance():
    ref = Reference("dpt_hybrid")
    weights = ref.weights()
    flipped = dict(weights)
    flipped["scratch.output_conv.4.weight"] = -weights["scratch.output_conv.4.weight"]
    return ref.keys, weights, flipped, ref


def test_layout_equals_the_official_key_list(conformance):
    keys = conformance[0]
    state = DPTHybrid().state_dict()
    assert list(state) == list(keys)
    assert {k: list(v.shape) for k, v in state.items()} == keys


def test_official_file_reproduces_the_timm_045_outputs(conformance, tmp_path):
    keys, weights, flipped, ref = conformance
    path = tmp_path / "dpt_hybrid-midas-501f0c75.pt"
    torch.save(weights, path)
    model = create("dpt_hybrid", checkpoint=path)
    x = ref["in_x"]
    with torch.no_grad():
        stage0, stage1, t8, t11 = model.forward_features(x)
        pre = model.head_pre_relu(x)
        out = model(x)
    checks = {"mid_head_pre_relu": pre, "mid_stage0_first16ch": stage0[:, :16],
              "mid_stage1_first32ch": stage1[:, :32],
              "mid_block8_tokens_first128": t8[..., :128],
              "mid_block11_tokens_first128": t11[..., :128]}
    for name, y in checks.items():
        ref.assert_close(name, y, 2e-4, 5e-5)
    ref.assert_max_abs("out_y", out, 5e-4)
    # The sign-flipped head (the README's check of the output path) via the {"model": ...}
    # container that DPT's loader also accepts.
    path_b = tmp_path / "dpt_with_optimizer.pt"
    torch.save({"model": flipped, "optimizer": {"lr": 1e-5}}, path_b)
    with torch.no_grad():
        flipsign = create("dpt_hybrid", checkpoint=path_b)(x)
    ref.assert_close("out_y_flipsign", flipsign, 2e-4, 5e-5)


def test_the_timm_1_arithmetic_is_available_and_differs_as_documented(conformance):
    keys, weights, _, ref = conformance
    ref1 = Reference("dpt_hybrid.timm1")
    model = DPTHybrid(standardisation="timm-1").eval()
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        pre = model.head_pre_relu(ref["in_x"])
    ref1.assert_close("mid_head_pre_relu", pre, 2e-4, 5e-5)
    # The two arithmetics are told apart by the tolerances: timm 1.x misses the 0.4.5 data,
    # in the compact data alone too.
    problems = ref.errors("mid_head_pre_relu", pre, 2e-4, 5e-5)
    assert any("(compact" in p for p in problems), problems
    assert ref.full is None or any("(full data)" in p for p in problems), problems


# --- the depth stage around the network ---------------------------------------------------

from cinemagraph.depth.dpt import DPTDepth, network_size  # noqa: E402


def test_network_size_follows_the_original_minimal_resize():
    assert network_size(720, 1280) == (384, 672)  # the 1280x720 photo
    assert network_size(384, 512) == (384, 512)
    assert network_size(1280, 720) == (672, 384)
    assert network_size(48, 64) == (288, 384)  # the scale closer to 1 wins (6 rather than 8)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A DPT file under its official name, with untrained weights (plumbing only)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(DPTHybrid().state_dict(), folder / "dpt_hybrid-midas-501f0c75.pt")
    return folder


def test_depth_stage_post_processing_is_the_originals(weights_dir):
    from scipy.ndimage import median_filter

    stage = DPTDepth(weights_dir / "dpt_hybrid-midas-501f0c75.pt")
    image = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    disparity = stage.disparity(image)
    assert disparity.shape == (1, 1, 40, 56)
    d = disparity[0, 0].numpy()
    d = median_filter((d - d.min()) / max(d.max() - d.min(), 1e-12), size=5)
    expected = 1.0 / torch.from_numpy(d).clamp_min(1e-6)
    assert torch.allclose(stage(image)[0, 0], expected, rtol=1e-5)


def test_median_filter_equals_scipys():
    from scipy.ndimage import median_filter

    from cinemagraph.depth.dpt import median_filter_5x5

    x = torch.rand(1, 1, 37, 53, generator=torch.Generator().manual_seed(3))
    ours = median_filter_5x5(x, rows_per_chunk=8)[0, 0].numpy()
    assert (ours == median_filter(x[0, 0].numpy(), size=5)).all()


def test_render_uses_dpt_when_its_weights_are_present(weights_dir, tmp_path, caplog):
    import logging

    from cinemagraph.cli.render import main as render_main
    from cinemagraph.media.image import save_image

    photo = tmp_path / "p.png"
    save_image(photo, (torch.rand(40, 56, 3).numpy() * 255).astype("uint8"))
    with caplog.at_level(logging.INFO):
        assert render_main([str(photo), "--camera", "static", "--frames", "2", "--device", "cpu",
                            "--weights-dir", str(weights_dir), "-o", str(tmp_path / "v.mp4"),
                            "--quiet"]) == 0
    assert "depth: DPT hybrid" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert render_main([str(photo), "--camera", "static", "--frames", "2", "--device", "cpu",
                            "--weights-dir", str(tmp_path), "-o", str(tmp_path / "w.mp4"),
                            "--quiet"]) == 0
    assert "no DPT weights" in caplog.text


def test_depth_command(weights_dir, tmp_path, capsys, monkeypatch):
    import imageio.v3 as iio
    import numpy as np

    from cinemagraph.depth.__main__ import main as depth_main
    from cinemagraph.media.image import save_image

    monkeypatch.chdir(tmp_path)  # no pretrained/ here
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    photo = tmp_path / "p.png"
    save_image(photo, (torch.rand(40, 56, 3).numpy() * 255).astype("uint8"))
    assert depth_main([str(photo), "--model", "prior", "--save-npy"]) == 0
    picture = iio.imread(tmp_path / "p_depth.png")
    assert picture.dtype == np.uint16 and picture.shape == (40, 56) and picture.max() == 65535
    assert np.load(tmp_path / "p_depth.npy").shape == (40, 56)
    assert depth_main([str(photo), "--model", "prior"]) == 2  # exists: needs --overwrite
    capsys.readouterr()
    assert depth_main([str(photo), "-o", str(tmp_path / "x.png")]) == 2  # no weights anywhere
    assert "no DPT weights" in capsys.readouterr().err
    assert depth_main([str(photo), "-o", str(tmp_path / "y.png"), "--weights-dir",
                       str(weights_dir), "--device", "cpu"]) == 0
    assert (tmp_path / "y.png").exists()


# --- DPT-Large: no conformance data exists; checked against the original's structure ------

@pytest.fixture(scope="module")
def large():
    from cinemagraph.depth.dpt import DPTLarge

    torch.manual_seed(0)
    return DPTLarge().eval()


def test_dpt_large_layout_follows_the_original_structure(conformance):
    """The layout DPT's ``_make_vit_b16_backbone(features=[256, 512, 1024, 1024],
    vit_features=1024)`` and ``DPT(features=256)`` build: timm's ViT-L/16 under
    ``pretrained.model``, four readout + reassembly blocks, and the hybrid's official decoder
    (checked against the hybrid's key list) with 1024-channel inputs at levels 3 and 4."""
    import timm

    from cinemagraph.depth.dpt import DPTLarge

    with torch.device("meta"):
        state = DPTLarge().state_dict()
        vit = timm.create_model("vit_large_patch16_384").state_dict()
    shapes = {k: list(v.shape) for k, v in state.items()}
    backbone = {k[len("pretrained.model."):]: v for k, v in shapes.items()
                if k.startswith("pretrained.model.")}
    assert backbone == {k: list(v.shape) for k, v in vit.items()}
    assert list(shapes)[: len(vit)] == ["pretrained.model." + k for k in vit]
    reassembly = {k: v for k, v in shapes.items() if k.startswith("pretrained.act_")}
    expected = {}
    for level, (out, resample) in enumerate([(256, [256, 256, 4, 4]), (512, [512, 512, 2, 2]),
                                              (1024, None), (1024, [1024, 1024, 3, 3])], 1):
        name = f"pretrained.act_postprocess{level}"
        expected[f"{name}.0.project.0.weight"] = [1024, 2048]
        expected[f"{name}.0.project.0.bias"] = [1024]
        expected[f"{name}.3.weight"] = [out, 1024, 1, 1]
        expected[f"{name}.3.bias"] = [out]
        if resample:
            expected[f"{name}.4.weight"] = resample
            expected[f"{name}.4.bias"] = [out]
    assert reassembly == expected and list(reassembly) == list(expected)
    hybrid = conformance[0]
    decoder = {k: v for k, v in hybrid.items() if k.startswith("scratch.")}
    decoder["scratch.layer3_rn.weight"] = [256, 1024, 3, 3]
    decoder["scratch.layer4_rn.weight"] = [256, 1024, 3, 3]
    ours = {k: v for k, v in shapes.items() if k.startswith("scratch.")}
    assert ours == decoder and list(ours) == list(decoder)
    assert len(state) == 368
    # 344 M parameters, as DPT's and MiDaS's model tables give for DPT-Large.
    assert sum(v.numel() for v in state.values()) == 344_055_465


def test_dpt_large_backbone_features_equal_timms_intermediates(large):
    x = torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = large.forward_features(x)
        theirs = large.pretrained.model.forward_intermediates(
            x, indices=[5, 11, 17, 23], norm=False, output_fmt="NLC",
            return_prefix_tokens=True, intermediates_only=True)
    assert len(ours) == 4
    for tokens, (spatial, prefix) in zip(ours, theirs):
        assert torch.equal(tokens, torch.cat([prefix, spatial], dim=1))


def test_dpt_large_reassembles_to_four_scales_and_predicts_depth(large, tmp_path):
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    grid = (4, 6)
    with torch.no_grad():
        tokens = large.forward_features(x)
        sizes = [large._reassemble(t, getattr(large.pretrained, f"act_postprocess{i + 1}"),
                                   grid).shape for i, t in enumerate(tokens)]
        pre = large.head_pre_relu(x)
        y = large(x)
    assert sizes == [(1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 1024, 2, 3)]
    assert pre.shape == (1, 1, 64, 96) and pre.std() > 0
    assert torch.equal(y, pre.relu()[:, 0])
