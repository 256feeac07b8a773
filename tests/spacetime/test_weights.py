"""Weight files of the feature network + decoder (:mod:`cinemagraph.spacetime.weights`): ours
saved and loaded back, the file mode, and the shipped weights found by default."""

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from cinemagraph.spacetime import (OWN_WEIGHTS, DecodeRules, SpaceTimeEnsemble, SpaceTimeModel,
                                   find_spacetime, load_spacetime, save_spacetime)
from cinemagraph.spacetime.weights import read_metadata

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"


def test_our_weights_save_into_a_new_folder_and_load_back_as_fp16(tmp_path):
    rules = DecodeRules(band_px=31, crack_px=7, fluid_px=15, fluid_rule="free")
    model = SpaceTimeModel("small", rules)
    torch.nn.init.normal_(model.img_decoder.outc.conv.weight, std=0.05)
    path = tmp_path / "new" / "folder" / "w.safetensors"
    save_spacetime(model, path, metadata={"step": 7, "note": "x"})
    loaded = load_spacetime(path)
    assert loaded.preset == "small" and loaded.rules == rules and not loaded.training
    assert not list(path.parent.glob("*.tmp"))
    with safe_open(str(path), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    for k, v in model.state_dict().items():
        assert loaded.state_dict()[k].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[k], v.half().float()), k
    meta = read_metadata(path)
    assert meta["preset"] == "small" and meta["step"] == "7" and meta["note"] == "x"
    # The official preset keeps no rules; fp32 on request.
    save_spacetime(SpaceTimeModel("official"), tmp_path / "o.safetensors", half=False)
    assert "decode_rules" not in read_metadata(tmp_path / "o.safetensors")
    official = load_spacetime(tmp_path / "o.safetensors")
    assert official.preset == "official" and official.rules is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_our_weights_get_the_mode_the_umask_gives_other_new_files(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        save_spacetime(SpaceTimeModel("small"), tmp_path / "w.safetensors")
        (tmp_path / "other.txt").write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "w.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "other.txt").stat().st_mode & 0o777 == 0o640


def test_the_official_checkpoint_is_found_before_ours(tmp_path):
    save_spacetime(SpaceTimeModel("small"), tmp_path / OWN_WEIGHTS)
    assert find_spacetime(tmp_path) == tmp_path / OWN_WEIGHTS
    for step in (900, 1200):
        (tmp_path / f"model_{step}.pth").write_bytes(b"")
    assert find_spacetime(tmp_path) == tmp_path / "model_1200.pth"  # the highest step


def test_the_shipped_weights_are_found_by_default_and_match_their_model_card(monkeypatch):
    shipped = PRETRAINED / OWN_WEIGHTS
    if not shipped.is_file():
        pytest.skip("no shipped weights in this checkout")
    # Issue 8: the shipped weights take at most 16 MB in all (what pretrained/ holds).
    assert sum(f.stat().st_size for f in PRETRAINED.rglob("*.safetensors")) <= 16 * 10**6
    monkeypatch.delenv("CINEMAGRAPH_WEIGHTS", raising=False)
    monkeypatch.chdir(PRETRAINED.parent)
    assert find_spacetime(None).resolve() == shipped.resolve()
    model = load_spacetime(shipped)
    assert isinstance(model, SpaceTimeEnsemble) and model.weights == (0.7, 0.3)
    # The shipped rules are the defaults (the file's decode_rules metadata).
    assert model.preset == "base" and model.rules == DecodeRules()
    assert all(m.rules == DecodeRules() for m in model.members)
    meta = read_metadata(shipped)
    assert DecodeRules.from_metadata(meta, str(shipped)) == DecodeRules()
    assert meta["card"] == "pretrained/MODEL_CARD.md" and meta["storage"] == "int8 and fp16"
    members = json.loads(meta["members"])
    assert [m["weight"] for m in members] == [0.7, 0.3]
    card = (PRETRAINED / "MODEL_CARD.md").read_text()
    for member in members:  # each member file is named, with its SHA-256, in the card
        assert member["sha256"] in card and Path(member["file"]).name in card
    # The card names the file's SHA-256 (checked last: rewriting the file's metadata changes
    # it, and the card must follow).
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() in card
