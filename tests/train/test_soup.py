"""Weight means of the feature network + decoder (cinemagraph.train.soup)."""

import json

import pytest
import torch
from safetensors import safe_open

from cinemagraph.errors import UserError
from cinemagraph.models.spacetime import SpaceTimeModel, load_spacetime, save_spacetime
from cinemagraph.train.soup import main, parse_ingredient, soup


def _model(seed: int, **kw) -> SpaceTimeModel:
    model = SpaceTimeModel("small", correction="band", band_px=31, crack_px=9, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model


@pytest.fixture
def files(tmp_path):
    paths = []
    for seed in (1, 2, 3):
        paths.append(tmp_path / f"w{seed}.safetensors")
        save_spacetime(_model(seed), paths[-1], half=False)
    return paths


def test_the_mean_is_the_weighted_mean_of_every_float_tensor(files):
    states = [load_spacetime(p).state_dict() for p in files]
    mixed = soup(files, [1.0, 1.0, 2.0]).state_dict()
    floats = 0
    for k, v in mixed.items():
        if v.is_floating_point():
            floats += 1
            want = (states[0][k] + states[1][k] + 2 * states[2][k]) / 4
            assert torch.allclose(v, want, atol=1e-6), k
        else:
            assert torch.equal(v, states[0][k]), k  # counters from the first file
    assert floats > 10
    # The ingredients differ, so the mean is none of them.
    key = "img_decoder.firstconv.weight"
    assert not any(torch.allclose(mixed[key], s[key]) for s in states)
    model = soup(files[:2])
    assert (model.correction, model.band_px, model.crack_px) == ("band", 31, 9)


def test_the_command_writes_fp16_with_its_ingredients_and_keeps_existing_files(files, tmp_path,
                                                                               capsys):
    out = tmp_path / "mean.safetensors"
    assert main([str(out), str(files[0]), f"{files[1]}=3"]) == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    ingredients = json.loads(meta["soup"])
    assert [i["file"] for i in ingredients] == ["w1.safetensors", "w2.safetensors"]
    assert [i["weight"] for i in ingredients] == [0.25, 0.75]
    assert all(len(i["sha256"]) == 64 for i in ingredients)
    assert meta["band_px"] == "31" and meta["crack_px"] == "9"
    key = "img_decoder.firstconv.weight"
    want = 0.25 * load_spacetime(files[0]).state_dict()[key] + 0.75 * load_spacetime(
        files[1]).state_dict()[key]
    assert torch.allclose(load_spacetime(out).state_dict()[key], want, atol=2e-3, rtol=1e-3)
    before = out.read_bytes()
    assert main([str(out), str(files[0]), str(files[2])]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main([str(out), str(files[0]), str(files[2]), "--overwrite", "--fp32"]) == 0
    assert out.read_bytes() != before
    assert not list(tmp_path.glob("*.tmp"))


def test_weights_that_do_not_belong_together_are_refused_in_one_line(files, tmp_path, capsys):
    other = tmp_path / "wide.safetensors"
    model = _model(4)
    model.set_correction("band", 63, 9)
    save_spacetime(model, other)
    with pytest.raises(UserError, match="band width 63"):
        soup([files[0], other])
    fluid = tmp_path / "fluid.safetensors"
    model.set_correction("band", 31, 9, 63)
    save_spacetime(model, fluid)
    with pytest.raises(UserError, match="fluid width 63"):
        soup([files[0], fluid])
    between = tmp_path / "between.safetensors"
    model.set_correction("band", 31, 9, 63, "between")
    save_spacetime(model, between)
    with pytest.raises(UserError, match="fluid rule between"):
        soup([fluid, between])
    inside = tmp_path / "inside.safetensors"
    model.set_correction("band", 31, 9, 63, "free", False)
    save_spacetime(model, inside)
    with pytest.raises(UserError, match="fluid border False"):
        soup([fluid, inside])
    base = tmp_path / "base.safetensors"
    save_spacetime(SpaceTimeModel("base", correction="band", band_px=31, crack_px=9), base)
    with pytest.raises(UserError, match="preset base"):
        soup([files[0], base])
    out = tmp_path / "out.safetensors"
    for argv, message in [([str(files[0])], "two or more"),
                          ([str(files[0]), str(tmp_path / "none.safetensors")], "is not a file"),
                          ([str(files[0]), f"{files[1]}=0"], "weight above 0"),
                          ([str(files[0]), str(other)], "band width 63")]:
        assert main([str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
        assert not out.exists()
    assert main([str(tmp_path / "out.pt"), str(files[0]), str(files[1])]) == 2
    assert "*.safetensors" in capsys.readouterr().err


def test_a_path_may_hold_an_equals_sign():
    assert parse_ingredient("runs/a=b/step_1.safetensors") == (
        parse_ingredient("runs/a=b/step_1.safetensors=1")[0], 1.0)
    assert parse_ingredient("x.safetensors=2.5")[1] == 2.5
