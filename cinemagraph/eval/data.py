"""Reading the synthetic ground truth written by ``python -m cinemagraph.data.synthetic``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..render.camera import CameraPath


@dataclass
class EvalScene:
    """One scene's inputs and, for each camera path, its ground truth ``both`` sequence.

    ``image (1, 3, H, W)``, ``depth (1, 1, H, W)``, ``flow (1, 2, H, W)``, ``mask (1, 1, H, W)``,
    ``K (3, 3)``; ``paths[name]`` is a :class:`CameraPath`; ``frames[name]`` ``(F, 3, H, W)``
    and ``valid[name]`` ``(F, H, W)``.
    """

    name: str
    image: Tensor
    depth: Tensor
    flow: Tensor
    mask: Tensor
    K: Tensor
    paths: dict
    frames: dict
    valid: dict


def _png(path: Path) -> Tensor:
    import imageio.v3 as iio

    return torch.from_numpy(np.asarray(iio.imread(path), dtype=np.float32) / 255.0)


def scene_folders(root: Path, split: str | None = None) -> list[Path]:
    """Return the scene folders under ``root`` (a dataset, one of its splits, or a scene)."""
    root = Path(root)
    if (root / "image.png").exists():
        return [root]
    base = root / split if split and (root / split).is_dir() else root
    found = sorted(p.parent for p in base.rglob("image.png") if not p.parent.name.endswith(".partial"))
    if not found:
        raise UserError(f"no synthetic scenes under '{root}': write some with python -m "
                        "cinemagraph.data.synthetic --out DIR --scenes N --split test")
    return found


def load_photo(folder: Path) -> tuple[Tensor, Tensor]:
    """The photo ``(1, 3, H, W)`` and its exact depth ``(1, 1, H, W)`` of one scene folder."""
    folder = Path(folder)
    image = _png(folder / "image.png").permute(2, 0, 1)[None, :3]
    depth = torch.from_numpy(np.load(folder / "depth.npy", allow_pickle=False))[None, None]
    return image, depth.float()


def load_scene(folder: Path, cameras: list[str] | None = None) -> EvalScene:
    """Read one scene folder (layout in :mod:`cinemagraph.data.synthetic`)."""
    folder = Path(folder)
    image, depth = load_photo(folder)
    flow = torch.from_numpy(np.load(folder / "motion.npy"))[None].float()
    mask = (_png(folder / "mask.png") > 0.5)[None, None]
    camera = json.loads((folder / "camera.json").read_text())
    K = torch.tensor(camera["K"], dtype=torch.float32)
    available = sorted(p.parent.parent.name for p in folder.glob("*/both/valid.npy"))
    names = cameras or available
    paths, frames, valid = {}, {}, {}
    for name in names:
        if name not in available:
            raise UserError(f"scene '{folder}' has no ground truth for camera '{name}' "
                            f"(it has {', '.join(available) or 'none'})")
        cam = json.loads((folder / name / "camera.json").read_text())
        paths[name] = CameraPath(name, torch.tensor(cam["world_to_camera"], dtype=torch.float32),
                                 torch.tensor(cam["K"], dtype=torch.float32), cam["closed"])
        files = sorted((folder / name / "both").glob("frame_*.png"))
        frames[name] = torch.stack([_png(f).permute(2, 0, 1)[:3] for f in files])
        valid[name] = torch.from_numpy(np.load(folder / name / "both" / "valid.npy"))
    return EvalScene(folder.name, image, depth, flow, mask, K, paths, frames, valid)
