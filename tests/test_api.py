"""The library's front door: cinemagraph.prepare, RenderOptions and PreparedScene."""

import pytest
import torch

import cinemagraph
from cinemagraph import pipeline
from cinemagraph.errors import UserError
from cinemagraph.motion import MotionHints, parse_hint_arg

from conftest import textured

H, W = 48, 64


@pytest.fixture
def photo(tmp_path):
    from cinemagraph.media import save_image

    path = tmp_path / "photo.png"
    save_image(path, (textured(H, W, seed=3)[0].permute(1, 2, 0).numpy() * 255).astype("uint8"))
    return path


def _frames(scene, camera="circle", frames=5):
    return torch.cat(list(scene.render(camera, frames)))


def _hints(text):
    return parse_hint_arg(text, (H, W))


def test_prepare_renders_the_frames_of_the_command_line(photo, tmp_path):
    import imageio.v3 as iio

    from cinemagraph.cli.render import main
    from cinemagraph.media.image import to_uint8

    options = cinemagraph.RenderOptions(decoder="builtin", device="cpu",
                                        hints=_hints("10,10,30,20"))
    frames = [to_uint8(f) for f in cinemagraph.prepare(photo, options).render("circle", 4)]
    assert main([str(photo), "--camera", "circle", "--frames", "4", "--decoder", "builtin",
                 "--device", "cpu", "--hint", "10,10,30,20", "--save-frames",
                 str(tmp_path / "f"), "-q"]) == 0
    saved = [iio.imread(p)[..., :3] for p in sorted((tmp_path / "f").glob("*.png"))]
    assert len(saved) == 4 and all((a == b).all() for a, b in zip(frames, saved))


def test_a_new_motion_keeps_the_layers_and_renders_as_a_fresh_scene(photo, monkeypatch):
    options = cinemagraph.RenderOptions(decoder="builtin", device="cpu",
                                        hints=_hints("10,10,30,20"))
    scene = cinemagraph.prepare(photo, options)
    first = _frames(scene)
    calls = []
    layering = pipeline.layered_depth_image
    monkeypatch.setattr(pipeline, "layered_depth_image",
                        lambda *a, **k: calls.append(1) or layering(*a, **k))
    moved = scene.with_motion(_hints("40,30,20,35"))
    again = _frames(moved)
    assert calls == []  # no layering (and so no inpainting) for a new hint
    assert (again - first).abs().max() > 0.05  # the motion changed the frames
    fresh = _frames(cinemagraph.prepare(photo, cinemagraph.RenderOptions(
        decoder="builtin", device="cpu", hints=_hints("40,30,20,35"))))
    assert torch.allclose(again, fresh, atol=1e-6)
    calls.clear()  # the fresh scene was layered
    # More frames than the cloud was animated for: no layering either. (A path that looks
    # farther past the photo needs a wider border, and so its own layers.)
    _frames(moved, "static", 5)
    calls.clear()
    longer = _frames(moved, "static", 9)
    assert calls == [] and longer.shape[0] == 9
    # The first scene is unchanged by its successor.
    assert torch.equal(_frames(scene), first)


def test_a_static_scene_gets_motion_later(photo):
    scene = cinemagraph.prepare(photo, cinemagraph.RenderOptions(decoder="builtin",
                                                                 device="cpu"))
    assert len(scene.options.hints) == 0
    still = _frames(scene, "static")
    assert torch.allclose(still[0], still[-1], atol=1e-6)  # nothing moves
    flowing = _frames(scene.with_motion(_hints("10,10,40,10")), "static")
    assert (flowing[-1] - flowing[0]).abs().max() > 0.05


@pytest.mark.parametrize("options, message", [
    (dict(decoder="nope"), "decoder 'nope'"),
    (dict(max_size=3), "--max-size 3"),
    (dict(decoder="builtin", decoder_weights="w.safetensors"), "uses no weights"),
    (dict(decoder_size=8), "--decoder-size 8"),
])
def test_options_that_cannot_work_are_one_line_errors(photo, options, message):
    with pytest.raises(UserError, match=message) as e:
        cinemagraph.prepare(photo, cinemagraph.RenderOptions(**options))
    assert "\n" not in str(e.value)


def test_a_tensor_photo_is_taken_as_it_is():
    image = textured(H, W)
    scene = cinemagraph.prepare(image, cinemagraph.RenderOptions(decoder="builtin",
                                                                 device="cpu"))
    assert scene.size == (H, W) and scene.original_size == (H, W)
    with pytest.raises(UserError, match="give \\(1, 3, H, W\\)"):
        cinemagraph.prepare(image[0])
    assert isinstance(scene.options.hints, MotionHints)
