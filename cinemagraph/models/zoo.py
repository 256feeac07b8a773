"""The model zoo: official networks by name, and the one loader for their weights.

``create(name, checkpoint=None)`` builds the module registered as ``name`` and, given a
checkpoint, fills it with strict loading. A checkpoint is an official file in any container
the official loaders accept, or our own safetensors:

* a plain state dict (DPT, the 3D-Photo inpainting networks);
* ``{"model": ...}`` (DPT when saved with an optimizer);
* ``{"netG": ...}`` (the motion network), keys prefixed ``motion_predictor.``;
* the training checkpoint of 3D Cinemagraphy, holding ``feature_net`` and ``img_decoder``
  (and optimiser state, ignored);
* ``.safetensors`` files (flat state dicts).

Files are read only with safetensors or ``torch.load(map_location="cpu", weights_only=True)``.
Prefixes that wrappers add (``module.``, ``motion_predictor.``) are stripped; keys a model
declares unused (DPT's ``pretrained.model.head.*``) are dropped; everything else must match
exactly, and a mismatch is reported with the missing and unexpected keys and the official
file that was expected.

Each network registers its :class:`ModelSpec` in its own file (:data:`SOURCES`).
Weights are looked for by official file name in, in order: a directory given by the caller
(``--weights-dir``), ``$CINEMAGRAPH_WEIGHTS``, ``pretrained/`` of the working directory, and
the weights shipped with the package (:func:`cinemagraph.resources.shipped_weights_dir`:
``pretrained/`` of a source checkout, ``cinemagraph/pretrained`` of an installed one;
:func:`find_weights`).
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import UserError
from ..resources import shipped_weights_dir

ENV_WEIGHTS = "CINEMAGRAPH_WEIGHTS"


@dataclass
class ModelSpec:
    """How to build and fill one registered network.

    ``official_file``: the file name the original code uses; ``container_key``: the entry
    of a checkpoint dict that holds this network, where there is one; ``strip``: key
    prefixes to remove; ``ignore``: glob patterns of keys the official file has and the
    model does not use.
    """

    name: str
    factory: Callable[[], nn.Module]
    official_file: str
    container_key: str | None = None
    strip: tuple[str, ...] = ("module.",)
    ignore: tuple[str, ...] = ()
    description: str = ""
    #: Called on the filled module; raises UserError where the weights are not usable.
    check: Callable[[nn.Module], None] | None = None


#: Where each network registers itself (in its own file, as timm's models do): those
#: modules are imported the first time the registry is read, so the zoo imports no stage.
SOURCES = {"dpt_hybrid": "cinemagraph.depth.dpt", "dpt_large": "cinemagraph.depth.dpt",
           "motion_net": "cinemagraph.models.motion_net",
           "inpaint_depth_net": "cinemagraph.models.inpaint_nets",
           "inpaint_color_net": "cinemagraph.models.inpaint_nets",
           "feature_net": "cinemagraph.models.feature_net",
           "img_decoder": "cinemagraph.models.img_decoder"}
KNOWN = tuple(SOURCES)


class Registry(dict):
    """The registered :class:`ModelSpec` s by name; reading it first imports every module of
    :data:`SOURCES`, where the networks register themselves (:func:`register`)."""

    _loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in dict.fromkeys(SOURCES.values()):
                importlib.import_module(module)

    def __getitem__(self, name):
        self._load()
        return super().__getitem__(name)

    def __contains__(self, name) -> bool:
        self._load()
        return super().__contains__(name)

    def __iter__(self):
        self._load()
        return super().__iter__()

    def get(self, name, default=None):
        self._load()
        return super().get(name, default)


REGISTRY = Registry()


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (each network's own file calls this)."""
    dict.__setitem__(REGISTRY, spec.name, spec)
    return spec


def read_checkpoint(path: Path) -> dict:
    """Return the top-level dict of a checkpoint file, read safely."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as e:  # truncated, corrupt, or not a weights-only pickle
        raise UserError(f"cannot read checkpoint '{path}' ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120]}); download it again "
                        "(cinemagraph download) or check the file") from None


def extract_state_dict(obj: dict, spec: ModelSpec) -> dict:
    """Return the state dict of ``spec``'s network from a checkpoint's top-level object."""
    if not isinstance(obj, dict):
        raise UserError(f"checkpoint for {spec.name} holds a {type(obj).__name__}, not a dict")
    if spec.container_key and spec.container_key in obj and isinstance(obj[spec.container_key], dict):
        obj = obj[spec.container_key]
    elif "netG" in obj and isinstance(obj["netG"], dict):
        obj = obj["netG"]
    elif "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in spec.strip:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in spec.ignore):
            continue
        state[key] = value
    return state


def load_weights(module: nn.Module, state: dict, spec: ModelSpec, source: str,
                 fix: str | None = None) -> None:
    """Load ``state`` into ``module`` strictly, with a clear error on any mismatch (ending in
    ``fix``, default: the official file that was expected)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        def some(keys):
            return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {some(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {some(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatch(es): {some(wrong)}")
        fix = fix or f"expected the official file {spec.official_file}"
        raise UserError(f"'{source}' does not fit {spec.name} ({'; '.join(parts)}); {fix}")
    module.load_state_dict(state, strict=True)


def create(name: str, checkpoint: str | Path | None = None) -> nn.Module:
    """Return the network registered as ``name``, filled from ``checkpoint`` if given."""
    if name not in REGISTRY:
        planned = " (planned, not registered yet)" if name in KNOWN else ""
        raise UserError(f"unknown model '{name}'{planned}: registered are "
                        f"{', '.join(sorted(REGISTRY)) or 'none'}")
    spec = REGISTRY[name]
    module = spec.factory()
    if checkpoint is not None:
        state = extract_state_dict(read_checkpoint(Path(checkpoint)), spec)
        load_weights(module, state, spec, str(checkpoint))
        if spec.check is not None:
            spec.check(module)
    return module.eval()


def weight_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    """Return the directories searched for official files, in order."""
    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir))
    if os.environ.get(ENV_WEIGHTS):
        dirs.append(Path(os.environ[ENV_WEIGHTS]))
    dirs.append(Path.cwd() / "pretrained")
    shipped = shipped_weights_dir()
    if shipped is not None:
        dirs.append(shipped)
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_weights(name: str, weights_dir: str | Path | None = None) -> Path | None:
    """Return the official file of model ``name`` where one is found, else None."""
    spec = REGISTRY.get(name)
    if spec is None:
        return None
    for directory in weight_dirs(weights_dir):
        candidate = directory / spec.official_file
        if candidate.is_file():
            return candidate
    return None
