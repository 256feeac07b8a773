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

Weights are looked for by official file name in, in order: a directory given by the caller
(``--weights-dir``), ``$CINEMAGRAPH_WEIGHTS``, ``pretrained/`` of the working directory, and
the weights shipped with the package (:func:`cinemagraph.resources.shipped_weights_dir`:
``pretrained/`` of a source checkout, ``cinemagraph/pretrained`` of an installed one;
:func:`find_weights`).
"""

from __future__ import annotations

import fnmatch
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


REGISTRY: dict[str, ModelSpec] = {}
#: Names the project will register (the issues of the other networks add theirs).
KNOWN = ("dpt_hybrid", "dpt_large", "motion_net", "inpaint_depth_net", "inpaint_color_net",
         "feature_net", "img_decoder")


def register(spec: ModelSpec) -> ModelSpec:
    REGISTRY[spec.name] = spec
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


def load_weights(module: nn.Module, state: dict, spec: ModelSpec, source: str) -> None:
    """Load ``state`` into ``module`` strictly, with a clear error on any mismatch."""
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
        raise UserError(f"'{source}' does not fit {spec.name} ({'; '.join(parts)}); expected "
                        f"the official file {spec.official_file}")
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
    if shipped_weights_dir() is not None:
        dirs.append(shipped_weights_dir())
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


def _img_decoder() -> nn.Module:
    from .img_decoder import ImgDecoder

    return ImgDecoder(in_ch=37, out_ch=3)


def _dpt_hybrid() -> nn.Module:
    from ..depth.dpt import DPTHybrid

    return DPTHybrid()


register(ModelSpec("dpt_hybrid", _dpt_hybrid, "dpt_hybrid-midas-501f0c75.pt",
                   description="DPT-Hybrid (ViT-Hybrid on timm), relative inverse depth"))


def _dpt_large() -> nn.Module:
    from ..depth.dpt import DPTLarge

    return DPTLarge()


register(ModelSpec("dpt_large", _dpt_large, "dpt_large-midas-2f21e586.pt",
                   description="DPT-Large (ViT-L/16 on timm), relative inverse depth"))


def _feature_net() -> nn.Module:
    from .feature_net import ResUNet

    return ResUNet(in_ch=4, out_ch=32)


register(ModelSpec("feature_net", _feature_net, "model_150000.pth", container_key="feature_net",
                   description="3D Cinemagraphy feature network (training checkpoint entry "
                               "'feature_net')"))
register(ModelSpec("img_decoder", _img_decoder, "model_150000.pth", container_key="img_decoder",
                   description="3D Cinemagraphy image decoder (training checkpoint entry "
                               "'img_decoder')"))


def _inpaint_depth_net() -> nn.Module:
    from .inpaint_nets import InpaintDepthNet

    return InpaintDepthNet()


def _inpaint_color_net() -> nn.Module:
    from .inpaint_nets import InpaintColorNet

    return InpaintColorNet()


def _check_mask_kernels(module: nn.Module) -> None:
    module.check_mask_kernels()


register(ModelSpec("inpaint_depth_net", _inpaint_depth_net, "depth-model.pth",
                   check=_check_mask_kernels,
                   description="3D Photo Inpainting depth network (partial-convolution U-Net), "
                               "zero-mean log depth"))
register(ModelSpec("inpaint_color_net", _inpaint_color_net, "color-model.pth",
                   check=_check_mask_kernels,
                   description="3D Photo Inpainting colour network (partial-convolution U-Net)"))


def _motion_net() -> nn.Module:
    from .motion_net import MotionNet

    return MotionNet()


register(ModelSpec("motion_net", _motion_net, "sceneflow_model.pth", container_key="netG",
                   description="3D Cinemagraphy Eulerian motion network (SPADE U-Net; "
                               "checkpoint entry 'netG', keys 'motion_predictor.*')"))
