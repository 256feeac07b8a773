"""The motion stage on the motion network: inputs, post-processing and the render's choice.
The network's arithmetic is proved by tests/models/test_motion_net.py."""

import logging

import pytest
import torch

from cinemagraph.models.motion_net import MotionNet
from cinemagraph.motion import MotionHints
from cinemagraph.motion.network import NetworkMotion, dense_hints

from conftest import textured


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("motion_weights")
    torch.manual_seed(0)
    torch.save({"netG": MotionNet().state_dict()}, folder / "sceneflow_model.pth")
    return folder


def test_dense_hints_spread_one_hint_over_the_mask():
    mask = torch.zeros(1, 1, 30, 40)
    mask[..., 10:25, 5:35] = 1
    hints = MotionHints(torch.tensor([[20.0, 15.0]]), torch.tensor([[0.5, -0.25]]))
    dense = dense_hints(hints, (30, 40), mask)
    inside = mask[0, 0] > 0
    assert torch.allclose(dense[0, 0][inside], torch.tensor(0.5))
    assert torch.allclose(dense[0, 1][inside], torch.tensor(-0.25))
    assert (dense[:, :, ~inside] == 0).all()


class Constant(torch.nn.Module):
    """A motion network that moves everything one grid pixel per frame to the right."""

    def forward(self, image, mask, hint):
        out = torch.zeros(1, 2, *image.shape[-2:])
        out[:, 0] = 1.0
        return out


def test_post_processing_scales_the_grid_motion_back_to_the_photo(weights_dir):
    stage = NetworkMotion(weights_dir / "sceneflow_model.pth", grid=256)

    stage.model = Constant()
    mask = torch.zeros(1, 1, 96, 160, dtype=torch.bool)
    mask[..., :, :] = True
    field = stage(textured(96, 160), MotionHints(mask=mask))
    # Far from the zero-padded border of the 15x15 blur: 1 grid pixel = 160 / 256 photo pixels.
    assert torch.allclose(field.flow[0, 0, 40:56, 60:100], torch.tensor(160 / 256), atol=1e-5)
    assert (field.flow[0, 1] == 0).all()
    small = torch.zeros_like(mask)
    small[..., 20:70, 30:120] = True
    field = stage(textured(96, 160), MotionHints(mask=small))
    assert (field.flow[:, :, ~small[0, 0]] == 0).all() and field.flow.abs().max() > 0


def test_the_network_motion_fades_at_the_mask_edge(weights_dir):
    stage = NetworkMotion(weights_dir / "sceneflow_model.pth", grid=256)

    stage.model = Constant()
    mask = torch.zeros(1, 1, 96, 160, dtype=torch.bool)
    mask[..., 40:, :] = True
    flow = stage(textured(96, 160), MotionHints(mask=mask)).flow
    speed = flow[0, 0, :, 80]
    assert (speed[:40] == 0).all()
    assert 0 < speed[40] < 0.1 * speed[70]  # was 3/5 of the speed: the blur's edge
    assert (speed[40:60].diff() >= 0).all()


def test_network_motion_is_deterministic_and_scales(weights_dir):
    image = textured(64, 96)
    mask = torch.zeros(1, 1, 64, 96, dtype=torch.bool)
    mask[..., 30:, :] = True
    hints = MotionHints(torch.tensor([[40.0, 50.0]]), torch.tensor([[1.0, 0.0]]), mask)
    stage = NetworkMotion(weights_dir / "sceneflow_model.pth", grid=256)
    a = stage(image, hints).flow
    b = stage(image, hints).flow
    assert torch.equal(a, b)  # eval mode: the spectral-norm vectors are not touched
    twice = NetworkMotion(weights_dir / "sceneflow_model.pth", grid=256, flow_scale=2.0)
    assert torch.allclose(twice(image, hints).flow, 2 * a, rtol=1e-5, atol=1e-6)
    demo = NetworkMotion(weights_dir / "sceneflow_model.pth", grid=256, train_mode=True)
    u = demo.model.motion_predictor.conv1.weight_u.clone()
    demo(image, hints)
    assert not torch.equal(u, demo.model.motion_predictor.conv1.weight_u)  # as the demo does


def test_render_motion_auto(weights_dir, tmp_path, caplog, capsys, monkeypatch):
    from cinemagraph.cli.render import main as render_main
    from cinemagraph.media.image import save_image

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    photo = tmp_path / "p.png"
    save_image(photo, (textured(48, 64)[0].permute(1, 2, 0).numpy() * 255).astype("uint8"))
    common = [str(photo), "--camera", "static", "--frames", "2", "--device", "cpu"]
    assert render_main(common + ["--motion", "auto", "-o", str(tmp_path / "a.mp4")]) == 2
    assert "--motion auto needs the motion network" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()
    with caplog.at_level(logging.INFO, logger="cinemagraph"):
        assert render_main(common + ["--motion", "auto", "--weights-dir", str(weights_dir),
                                     "-o", str(tmp_path / "b.mp4")]) == 0
    assert "motion: motion network" in caplog.text and "without hints" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cinemagraph"):
        assert render_main(common + ["--hint", "10,30,40,30", "-o", str(tmp_path / "c.mp4")]) == 0
    assert "no motion-network weights" in caplog.text
