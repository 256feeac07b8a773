import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.models import create, find_weights
from cinemagraph.models.zoo import ENV_WEIGHTS

from .conformance import Reference


def decoder_state():
    return {k: v.clone() for k, v in create("img_decoder").state_dict().items()}


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 37, 32, 48, generator=g), torch.rand(1, 37, 32, 48, generator=g)


def test_unknown_and_planned_names_are_clear_errors():
    with pytest.raises(UserError, match="unknown model 'nope'"):
        create("nope")
    from cinemagraph.models.zoo import KNOWN, REGISTRY

    assert set(KNOWN) <= set(REGISTRY)  # every planned network is registered


@pytest.mark.parametrize("container", ["training", "plain", "module", "safetensors"])
def test_official_containers_load_into_the_same_network(tmp_path, container):
    state = decoder_state()
    for key in state:  # distinct values, so a wrong load shows
        state[key] = state[key] + 0.01 * torch.randn_like(state[key].float()).to(state[key].dtype)
    reference = create("img_decoder")
    reference.load_state_dict(state)
    if container == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "decoder.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = tmp_path / "model_150000.pth"
        if container == "training":
            obj = {"feature_net": {"conv.weight": torch.zeros(1)}, "img_decoder": state,
                   "optimizer": {"lr": 1e-4}, "step": 150000}
        elif container == "module":
            obj = {f"module.{k}": v for k, v in state.items()}
        else:
            obj = state
        torch.save(obj, path)
    model = create("img_decoder", checkpoint=path)
    x0, x1 = inputs()
    with torch.no_grad():
        assert torch.equal(model(x0, x1, 0.4), reference(x0, x1, 0.4))


def test_rule_weights_through_an_official_file_reproduce_the_original_outputs(tmp_path):
    ref = Reference("img_decoder")
    path = tmp_path / "model_150000.pth"
    torch.save({"img_decoder": ref.weights(), "feature_net": {}}, path)
    model = create("img_decoder", checkpoint=path)
    with torch.no_grad():
        y = model(ref["in_x0_b"], ref["in_x1_b"], 0.3)
    ref.assert_close("out_y_b", y, 1e-4, 2e-5)


def test_a_mismatch_names_the_keys_and_the_official_file(tmp_path):
    state = decoder_state()
    state.pop("alpha")
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as info:
        create("img_decoder", checkpoint=path)
    message = str(info.value)
    assert "missing key(s): alpha" in message and "unexpected key(s): extra.weight" in message
    assert "model_150000.pth" in message


class Payload:
    pass


def test_corrupt_and_unsafe_files_are_refused(tmp_path):
    truncated = tmp_path / "truncated.pth"
    torch.save(decoder_state(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        create("img_decoder", checkpoint=truncated)

    # Arbitrary objects are not weights: weights_only refuses to unpickle them.
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"img_decoder": Payload()}, unsafe)
    with pytest.raises(UserError, match="cannot read checkpoint"):
        create("img_decoder", checkpoint=unsafe)
    with pytest.raises(UserError, match="does not exist"):
        create("img_decoder", checkpoint=tmp_path / "absent.pth")


def test_weights_are_found_by_official_name_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "model_150000.pth").write_bytes(b"x")
    monkeypatch.setenv(ENV_WEIGHTS, str(second))
    monkeypatch.chdir(tmp_path)
    assert find_weights("img_decoder", first) == second / "model_150000.pth"
    (first / "model_150000.pth").write_bytes(b"x")
    assert find_weights("img_decoder", first) == first / "model_150000.pth"
    monkeypatch.delenv(ENV_WEIGHTS)
    assert find_weights("img_decoder") is None or "pretrained" in str(find_weights("img_decoder"))
