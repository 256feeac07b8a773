"""Output ensembles of the feature network + decoder (``cinemagraph.train.weights
ensemble``): one file, rendered as its members' frames mixed."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cinemagraph.errors import UserError
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import METHODS, MethodInput
from cinemagraph.spacetime import (SpaceTimeEnsemble, SpaceTimeModel, learned_components,
                                          load_spacetime, save_spacetime)
from cinemagraph.motion.field import MotionField
from cinemagraph.spacetime.rules import DecodeRules
from cinemagraph.train.weights import main as weights_main
from cinemagraph.train.weights import soup

from eval.scenes import tiny_scenes


def main(argv):
    return weights_main(["ensemble", *argv])


def _noisy(seed: int, **rules) -> SpaceTimeModel:
    rules = {"band_px": 15, "crack_px": 9, "fluid_px": 0, **rules}
    model = SpaceTimeModel("small", DecodeRules(**rules))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("ensemble"), "val")


@pytest.fixture
def members(tmp_path):
    paths = [tmp_path / "a.safetensors", tmp_path / "b.safetensors"]
    for seed, path in zip((1, 2), paths):
        save_spacetime(_noisy(seed), path)  # fp16, as the ensemble stores them
    return paths


def _videos(scenes, weights):
    out = []
    for folder in scene_folders(scenes):
        scene = load_scene(folder)
        motion = MotionField(scene.flow, scene.mask)
        for path in scene.paths.values():
            with torch.no_grad():
                out.append(METHODS["ours-learned"](MethodInput(scene.image, scene.depth, motion,
                                                               path, scene.K, weights)))
    return torch.cat(out)


def test_an_ensemble_renders_its_members_frames_mixed(scenes, members, tmp_path, capsys):
    out = tmp_path / "ens.safetensors"
    assert main([str(out), f"{members[0]}=3", f"{members[1]}=1"]) == 0
    model = load_spacetime(out)
    assert isinstance(model, SpaceTimeEnsemble) and model.weights == (0.75, 0.25)
    assert (model.rules.band_px, model.rules.crack_px) == (15, 9)
    a, b = _videos(scenes, members[0]), _videos(scenes, members[1])
    mixed = _videos(scenes, out)
    assert (a - b).abs().max() > 0.05  # the members differ, so the mix is neither
    # The frames that mixing the two renders makes (the members' fp16 tensors kept as they are).
    assert torch.allclose(mixed, (0.75 * a + 0.25 * b).clamp(0, 1), atol=1e-6)
    assert (mixed - a).abs().max() > 0.01 and (mixed - b).abs().max() > 0.01
    # The log says what runs.
    assert "an output ensemble of 2 networks weighted 0.75 / 0.25" in \
        learned_components(out)[1].description
    # The metadata names the members.
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert [m["file"] for m in json.loads(meta["members"])] == ["a.safetensors", "b.safetensors"]
    assert meta["storage"] == "fp16"
    # Not overwritten without --overwrite.
    assert main([str(out), str(members[0]), str(members[1])]) == 2
    assert "exists" in capsys.readouterr().err


def test_int8_storage_halves_the_file_and_keeps_the_frames_close(scenes, members, tmp_path):
    fp16, int8 = tmp_path / "fp16.safetensors", tmp_path / "int8.safetensors"
    assert main([str(fp16), str(members[0]), str(members[1])]) == 0
    assert main([str(int8), str(members[0]), str(members[1]), "--int8"]) == 0
    assert int8.stat().st_size < 0.6 * fp16.stat().st_size
    stored = load_file(str(int8))
    key = "member0.img_decoder.firstconv.weight"
    assert stored[key].dtype == torch.int8 and key + ".int8_scale" in stored
    # Each restored weight lies within half a step of its channel's scale from the original.
    original = load_spacetime(members[0]).state_dict()["img_decoder.firstconv.weight"]
    restored = load_spacetime(int8).members[0].state_dict()["img_decoder.firstconv.weight"]
    scale = stored[key + ".int8_scale"].reshape(-1, 1, 1, 1)
    assert ((restored - original).abs() <= scale / 2 + 1e-6).all()
    assert not torch.equal(restored, original)
    near = (_videos(scenes, int8) - _videos(scenes, fp16)).abs()
    # One pixel may move by up to a tenth (0.0955 with the layering and splatting of
    # 2026-12-07, under 0.05 before); on average the frames stay within half a percent.
    assert near.max() < 0.1 and near.mean() < 5e-3


def test_members_that_do_not_belong_together_are_refused_in_one_line(members, tmp_path, capsys):
    other = tmp_path / "other.safetensors"
    save_spacetime(_noisy(3, band_px=31), other, half=False)
    assert main([str(tmp_path / "x.safetensors"), str(members[0]), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has band_px 31" in err and "\n" not in err
    assert not (tmp_path / "x.safetensors").exists()
    assert main([str(tmp_path / "x.safetensors"), str(members[0])]) == 2
    assert "two or more" in capsys.readouterr().err
    # An ensemble is neither a member, nor a soup's ingredient.
    ens = tmp_path / "ens.safetensors"
    assert main([str(ens), str(members[0]), str(members[1])]) == 0
    assert main([str(tmp_path / "y.safetensors"), str(ens), str(members[0])]) == 2
    assert "is an output ensemble" in capsys.readouterr().err
    with pytest.raises(UserError, match="output ensemble"):
        soup([ens, members[0]])


def test_a_damaged_ensemble_file_is_a_one_line_error(members, tmp_path):
    ens = tmp_path / "ens.safetensors"
    assert main([str(ens), str(members[0]), str(members[1]), "--int8"]) == 0
    state = load_file(str(ens))
    with safe_open(str(ens), "pt") as f:
        meta = f.metadata()
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken), metadata={**meta, "ensemble": "[0.5, oops]"})
    with pytest.raises(UserError, match="malformed ensemble weights"):
        load_spacetime(broken)
    save_file({k: v for k, v in state.items() if not k.startswith("member1.")}, str(broken),
              metadata=meta)
    with pytest.raises(UserError, match="no tensors of member 1"):
        load_spacetime(broken)
    save_file({**state, "member2.extra": torch.zeros(2)}, str(broken), metadata=meta)
    with pytest.raises(UserError, match="tensors of no ensemble member"):
        load_spacetime(broken)
    key = "member0.img_decoder.firstconv.weight"
    save_file({**state, key: state[key].float()}, str(broken), metadata=meta)
    with pytest.raises(UserError, match="malformed int8 tensor"):
        load_spacetime(broken)


def test_a_size_limit_stores_only_the_largest_weights_as_int8(scenes, members, tmp_path, capsys):
    fp16, int8 = tmp_path / "fp16.safetensors", tmp_path / "int8.safetensors"
    assert main([str(fp16), str(members[0]), f"{members[1]}=3"]) == 0
    assert main([str(int8), str(members[0]), f"{members[1]}=3", "--int8"]) == 0
    limit = (fp16.stat().st_size + int8.stat().st_size) / 2 / 1e6
    mixed = tmp_path / "mixed.safetensors"
    assert main([str(mixed), str(members[0]), f"{members[1]}=3", "--max-mb", str(limit)]) == 0
    assert int8.stat().st_size < mixed.stat().st_size <= limit * 1e6
    stored = load_file(str(mixed))
    with safe_open(str(mixed), "pt") as f:
        assert f.metadata()["storage"] == "int8 and fp16"
    weights = {k: v for k, v in load_file(str(fp16)).items() if v.dim() >= 2}
    as_int8 = {k for k in weights if stored[k].dtype == torch.int8}
    assert as_int8 and as_int8 != set(weights)
    # Largest first: every int8 tensor is at least as large as every fp16 one, and among the
    # two members' tensors of one size, the lighter member's (member0, weight 1 of 4) first.
    assert min(weights[k].numel() for k in as_int8) >= \
        max(weights[k].numel() for k in set(weights) - as_int8)
    for k in as_int8:
        twin = k.replace("member1.", "member0.", 1)
        assert k.startswith("member0.") or twin in as_int8
    near = (_videos(scenes, mixed) - _videos(scenes, fp16)).abs()
    far = (_videos(scenes, int8) - _videos(scenes, fp16)).abs()
    assert near.mean() < far.mean()
    # A limit that fp16 already meets quantizes nothing; one that int8 cannot meet is an error.
    roomy = tmp_path / "roomy.safetensors"
    assert main([str(roomy), str(members[0]), str(members[1]), "--max-mb", "1000"]) == 0
    assert all(v.dtype != torch.int8 for v in load_file(str(roomy)).values())
    assert main([str(tmp_path / "x.safetensors"), str(members[0]), str(members[1]),
                 "--max-mb", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert "even in int8 throughout" in err and "\n" not in err
    assert not (tmp_path / "x.safetensors").exists()
    assert main([str(tmp_path / "x.safetensors"), str(members[0]), str(members[1]),
                 "--int8", "--max-mb", "16"]) == 2
    assert "not both" in capsys.readouterr().err
