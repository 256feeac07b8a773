"""The learned inpainter (3D Photo networks) in the pipeline, with untrained weights: plumbing,
invariances and the render's choice of inpainting. The networks' arithmetic is proved by
tests/models/test_inpaint_nets.py against the conformance data."""

import logging

import pytest
import torch

from cinemagraph.ldi import SequentialSettings, sequential_layered_depth_image
from cinemagraph.ldi.learned import PhotoInpainter
from cinemagraph.models.inpaint_nets import InpaintColorNet, InpaintDepthNet
from cinemagraph.motion.field import MotionField

from conftest import textured


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inpaint_weights")
    torch.manual_seed(0)
    for cls, name in ((InpaintDepthNet, "depth-model.pth"), (InpaintColorNet, "color-model.pth")):
        net = cls()
        for module in net.modules():  # give the batch norms non-trivial statistics
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        torch.save(net.state_dict(), folder / name)
    return folder


@pytest.fixture(scope="module")
def inpainter(weights_dir):
    return PhotoInpainter(weights_dir / "depth-model.pth", weights_dir / "color-model.pth")


def scene(h=60, w=84):
    depth = torch.full((1, 1, h, w), 6.0) + torch.linspace(0, 1, w).view(1, 1, 1, w)
    depth[..., 15:45, 20:50] = 1.5
    context = depth > 3.0
    context[..., 13:47, 18:52] = False
    hole = ~context
    return textured(h, w), depth, context, hole


def test_context_is_kept_and_outputs_are_in_range(inpainter):
    image, depth, context, hole = scene()
    color, filled = inpainter(image, depth, context, hole)
    assert color.shape == image.shape and filled.shape == depth.shape
    assert torch.equal(filled[context], depth[context])
    assert (color >= 0).all() and (color <= 1).all()
    assert (filled > 0).all() and torch.isfinite(filled).all()


def test_depth_inpainting_is_scale_free(inpainter):
    """Log depth with the context's mean removed: scaling the scene scales the fill."""
    image, depth, context, hole = scene()
    _, filled = inpainter(image, depth, context, hole)
    _, filled3 = inpainter(image, 3.0 * depth, context, hole)
    assert torch.allclose(filled3, 3.0 * filled, rtol=1e-4)


def test_the_procedure_runs_with_the_networks(inpainter):
    image, depth, _, _ = scene()
    ldi = sequential_layered_depth_image(image, depth, MotionField.static(60, 84), inpainter,
                                         SequentialSettings())
    assert ldi.num_layers == 2
    hidden = ldi.coverage[1, 0] & (depth[0, 0] < 3.0)
    assert hidden.any()  # the far layer was filled behind the near box
    assert (ldi.depth[1, 0][hidden] >= 1.5 * 1.01 - 1e-6).all()


def test_render_uses_the_networks_when_both_files_are_present(weights_dir, tmp_path, caplog,
                                                               capsys, monkeypatch):
    from cinemagraph.cli.render import main as render_main
    from cinemagraph.media.image import save_image

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    photo = tmp_path / "p.png"
    save_image(photo, (textured(48, 64)[0].permute(1, 2, 0).numpy() * 255).astype("uint8"))
    common = [str(photo), "--camera", "static", "--frames", "2", "--device", "cpu"]
    with caplog.at_level(logging.INFO, logger="cinemagraph"):
        assert render_main(common + ["--weights-dir", str(weights_dir),
                                     "-o", str(tmp_path / "a.mp4")]) == 0
    assert "3D Photo inpainting networks" in caplog.text
    assert "original procedure" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cinemagraph"):
        assert render_main(common + ["-o", str(tmp_path / "b.mp4")]) == 0
    assert "inpainting: built-in push-pull (no 3D Photo weights" in caplog.text
    capsys.readouterr()
    assert render_main(common + ["--inpainting", "learned", "-o", str(tmp_path / "c.mp4")]) == 2
    err = capsys.readouterr().err
    assert "--inpainting learned needs depth-model.pth and color-model.pth" in err
    assert not (tmp_path / "c.mp4").exists()
