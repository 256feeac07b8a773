"""The weights tool (cinemagraph.train.weights): weight means, upgrading older files, and
the retired commands' messages."""

import json

import pytest
import torch
from safetensors import safe_open

from cinemagraph.errors import UserError
from cinemagraph.spacetime import SpaceTimeModel, load_spacetime, save_spacetime
from cinemagraph.spacetime.rules import DecodeRules
from cinemagraph.train.weights import main as weights_main
from cinemagraph.train.weights import parse_ingredient, soup


def main(argv):
    return weights_main(["soup", *argv])


def _model(seed: int, **kw) -> SpaceTimeModel:
    model = SpaceTimeModel("small", DecodeRules(**{"band_px": 31, "crack_px": 9, **kw}))
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
    assert (model.rules.band_px, model.rules.crack_px) == (31, 9)


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
    assert DecodeRules.from_metadata(meta, "mean") == DecodeRules(band_px=31, crack_px=9)
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
    save_spacetime(_model(4, band_px=63), other)
    with pytest.raises(UserError, match="band_px 63"):
        soup([files[0], other])
    fluid = tmp_path / "fluid.safetensors"
    save_spacetime(_model(4, fluid_px=63), fluid)
    with pytest.raises(UserError, match="fluid_px 63"):
        soup([files[0], fluid])
    inside = tmp_path / "inside.safetensors"
    save_spacetime(_model(4, fluid_border=True), inside)
    with pytest.raises(UserError, match="fluid_border True"):
        soup([files[0], inside])
    base = tmp_path / "base.safetensors"
    save_spacetime(SpaceTimeModel("base", DecodeRules(band_px=31, crack_px=9)), base)
    with pytest.raises(UserError, match="preset base"):
        soup([files[0], base])
    out = tmp_path / "out.safetensors"
    for argv, message in [([str(files[0])], "two or more"),
                          ([str(files[0]), str(tmp_path / "none.safetensors")], "is not a file"),
                          ([str(files[0]), f"{files[1]}=0"], "weight above 0"),
                          ([str(files[0]), str(other)], "band_px 63")]:
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


def test_an_older_file_is_refused_until_upgraded_and_then_renders_the_same(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from cinemagraph.spacetime.rules import METADATA_KEY

    new = tmp_path / "new.safetensors"
    save_spacetime(_model(5, band_px=63, fluid_px=31), new)
    with safe_open(str(new), "pt") as f:
        meta = f.metadata()
    # The same tensors with the rules as older files wrote them, one entry per rule.
    older = {k: v for k, v in meta.items() if k != METADATA_KEY}
    older.update(correction="band", band_px="63", crack_px="9", fluid_px="31",
                 fluid_rule="smooth", fluid_border="false")
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(new)), str(old), metadata=older)
    with pytest.raises(UserError, match="holds no decode rules.*upgrade"):
        load_spacetime(old)
    up = tmp_path / "up.safetensors"
    assert weights_main(["upgrade", str(old), str(up)]) == 0
    assert load_spacetime(up).rules == load_spacetime(new).rules
    assert all(torch.equal(a, b) for a, b in zip(load_file(str(up)).values(),
                                                 load_file(str(new)).values()))
    # Rules this version cannot apply are named, and nothing is written.
    for key, value, named in [("correction", "gate", "correction 'gate'"),
                              ("clamp_px", "13", "clamp_px 13"),
                              ("fluid_rule", "between", "fluid_rule 'between'")]:
        save_file(load_file(str(new)), str(old), metadata={**older, key: value})
        out = tmp_path / f"{key}.safetensors"
        assert weights_main(["upgrade", str(old), str(out)]) == 2
        err = capsys.readouterr().err
        assert named in err and err.count("\n") == 1 and not out.exists()
    assert weights_main(["upgrade", str(new), str(tmp_path / "again.safetensors")]) == 2
    assert "needs no upgrade" in capsys.readouterr().err


@pytest.mark.parametrize("rules, named", [({"band_px": 0}, "band_px 0"),
                                          ({"fluid_rule": "detail"}, "fluid_rule 'detail'"),
                                          ({"moved_detail": True}, "'moved_detail' is not one"),
                                          (None, "'smooth_sigma' is missing")])
def test_a_file_whose_rules_this_code_cannot_apply_names_the_field(tmp_path, rules, named):
    from safetensors.torch import load_file, save_file

    from cinemagraph.spacetime.rules import METADATA_KEY

    good = tmp_path / "good.safetensors"
    save_spacetime(_model(6), good)
    with safe_open(str(good), "pt") as f:
        meta = f.metadata()
    values = json.loads(meta[METADATA_KEY])
    if rules is None:
        del values["smooth_sigma"]
    else:
        values.update(rules)
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(good)), str(bad), metadata={**meta, METADATA_KEY: json.dumps(values)})
    with pytest.raises(UserError, match=named) as e:
        load_spacetime(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("verb", ["soup", "ensemble"])
def test_the_retired_commands_name_their_replacement(verb):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", f"cinemagraph.train.{verb}", "a", "b"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert f"cinemagraph.train.weights {verb}" in done.stderr and done.stderr.count("\n") == 1
