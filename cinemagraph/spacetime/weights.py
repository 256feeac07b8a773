"""Weight files of the feature network + decoder: the official training checkpoint
(``model_STEP.pth``, a dict holding ``feature_net`` and ``img_decoder``; official preset), or
our safetensors.

Ours hold ``feature_net.*`` and ``img_decoder.*`` of one :class:`SpaceTimeModel`, or each
member's tensors under ``memberI.`` for an output ensemble (:class:`SpaceTimeEnsemble`), in
fp16 or int8 (:mod:`.storage`). Their metadata names the ``preset``, the residual presets'
:class:`~cinemagraph.spacetime.rules.DecodeRules` (``decode_rules``, JSON), an ensemble's
weights (``ensemble``, JSON) and the storage; anything else given (provenance: the members'
or ingredients' files and SHA-256) is kept as written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from ..models.feature_net import PRESETS as FEATURE_PRESETS
from .ensemble import SpaceTimeEnsemble
from .network import SpaceTimeModel
from .rules import DecodeRules
from .storage import INT8_SCALE, dequantize, largest_first_int8, quantize

#: The file name of our own weights (shipped with the package, or in a weights folder).
OWN_WEIGHTS = "cinemagraph_spacetime.safetensors"


def _model_metadata(model: SpaceTimeModel | SpaceTimeEnsemble) -> dict[str, str]:
    meta = {"preset": model.preset}
    if model.rules is not None:
        meta.update(model.rules.to_metadata())
    return meta


def _extra_metadata(metadata: dict | None) -> dict[str, str]:
    return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in (metadata or {}).items()}


def write_safetensors(state: dict[str, Tensor], meta: dict[str, str], path: str | Path) -> None:
    """Write ``state`` with ``meta`` via a temporary name, making the folder if needed."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    # safetensors 0.8 writes through a temporary file of mode 0600 whatever the umask
    # (safetensors/safetensors#782): give the file the mode any other new file gets.
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp.replace(path)


def save_spacetime(model: SpaceTimeModel, path: str | Path, half: bool = True,
                   metadata: dict | None = None) -> None:
    """Write ``model`` as our safetensors (fp16 unless ``half`` is False), via a temporary
    name, making the folder if needed."""
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    write_safetensors(state, {**_extra_metadata(metadata), **_model_metadata(model)}, path)


def save_ensemble(ensemble: SpaceTimeEnsemble, path: str | Path, int8: bool = False,
                  metadata: dict | None = None, max_bytes: int | None = None) -> None:
    """Write ``ensemble`` as one safetensors file (each member's tensors under ``memberI.``,
    fp16, or int8 with ``int8``), via a temporary name. ``max_bytes``: store the largest
    weights as int8, as few as keep the file within that size, the rest fp16
    (:func:`~cinemagraph.spacetime.storage.largest_first_int8`; ValueError where it cannot);
    not with ``int8``."""
    if int8 and max_bytes is not None:
        raise ValueError("give int8 (every weight) or max_bytes (the largest), not both")
    state = {}
    for i, member in enumerate(ensemble.members):
        own = {k: v.detach().to("cpu") for k, v in member.state_dict().items()}
        state.update({f"member{i}.{k}": v for k, v in own.items()})
    meta = {**_extra_metadata(metadata), **_model_metadata(ensemble),
            "ensemble": json.dumps(list(ensemble.weights))}
    if max_bytes is not None:
        # Among tensors of one size, those of the members that weigh least in the mix first.
        weight = {f"member{i}": w for i, w in enumerate(ensemble.weights)}
        state = largest_first_int8(state, {**meta, "storage": "int8 and fp16"}, max_bytes,
                                   lambda key: weight[key.split(".", 1)[0]])
        quantized = sum(k.endswith(INT8_SCALE) for k in state)
        meta["storage"] = "int8 and fp16" if quantized else "fp16"
    else:
        state = quantize(state) if int8 else quantize(state, ())
        meta["storage"] = "int8" if int8 else "fp16"
    write_safetensors(state, meta, path)


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of our safetensors file ``path``; a one-line error where it cannot be
    read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata() or {}
    except Exception as e:
        raise UserError(f"cannot read '{path}' ({type(e).__name__}: {e}); download or "
                        "train it again") from None


def load_spacetime(path: str | Path) -> SpaceTimeModel | SpaceTimeEnsemble:
    """Return the model in ``path``, in eval mode: the official training checkpoint or our
    safetensors (one network, or an output ensemble)."""
    from ..models.zoo import REGISTRY, extract_state_dict, load_weights, read_checkpoint

    path = Path(path)
    if path.suffix != ".safetensors":
        model = SpaceTimeModel("official")
        top = read_checkpoint(path)
        for name in ("feature_net", "img_decoder"):
            spec = REGISTRY[name]
            load_weights(getattr(model, name), extract_state_dict(top, spec), spec, str(path))
        return model.eval()
    meta = read_metadata(path)
    preset = meta.get("preset", "official")
    if preset not in FEATURE_PRESETS:
        raise UserError(f"'{path}' names an unknown preset '{preset}'")
    rules = None
    if preset != "official":
        try:
            rules = DecodeRules.from_metadata(meta, str(path))
        except ValueError as e:
            raise UserError(str(e)) from None
    state = read_checkpoint(path)
    if "ensemble" not in meta:
        return _fit_state(SpaceTimeModel(preset, rules), state, path)
    try:
        weights = [float(w) for w in json.loads(meta["ensemble"])]
    except (ValueError, TypeError):
        raise UserError(f"'{path}' has malformed ensemble weights '{meta['ensemble']}' in its "
                        "metadata: make the file again") from None
    members = []
    for i in range(len(weights)):
        prefix = f"member{i}."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not own:
            raise UserError(f"'{path}' names {len(weights)} ensemble members but holds no "
                            f"tensors of member {i}: make the file again")
        members.append(_fit_state(SpaceTimeModel(preset, rules), own, path))
    prefixes = {f"member{i}" for i in range(len(weights))}
    extra = [k for k in state if k.split(".", 1)[0] not in prefixes]
    if extra:
        raise UserError(f"'{path}' holds tensors of no ensemble member (e.g. '{extra[0]}'): "
                        "make the file again")
    try:
        return SpaceTimeEnsemble(members, weights).eval()
    except ValueError as e:
        raise UserError(f"'{path}': {e}") from None


def _fit_state(model: SpaceTimeModel, state: dict[str, Tensor], path: Path) -> SpaceTimeModel:
    """``model`` holding ``state`` (int8-stored weights restored), in eval mode, through the
    zoo's one strict loader; a state that does not fit is a one-line error."""
    from ..models.zoo import ModelSpec, load_weights

    state = dequantize(state, path)
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    spec = ModelSpec(f"the '{model.preset}' preset", SpaceTimeModel, OWN_WEIGHTS)
    load_weights(model, state, spec, str(path), fix="train or download the file again")
    return model.eval()


def find_spacetime(weights_dir: str | Path | None = None) -> Path | None:
    """Return the official training checkpoint (``model_*.pth``, the highest step) found in
    the weight directories, else our own weights file, else None."""
    from ..models.zoo import weight_dirs

    dirs = weight_dirs(weights_dir)
    for directory in dirs:
        found = sorted(directory.glob("model_*.pth"),
                       key=lambda p: int(p.stem[6:]) if p.stem[6:].isdigit() else -1)
        if found:
            return found[-1]
    for directory in dirs:
        if (directory / OWN_WEIGHTS).is_file():
            return directory / OWN_WEIGHTS
    return None
