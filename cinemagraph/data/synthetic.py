"""Synthetic 3D cinemagraph data with exact ground truth, and the command that writes it.

    python -m cinemagraph.data.synthetic --out DIR --scenes N --seed S [--split train]
        [--size 512x384] [--frames 60] [--paths zoom-in,circle] [--supersample 2]
        [--contact-sheet sheet.png] [--device cpu|cuda] [--overwrite]

What a sample holds (:func:`make_sample`; the scenes are described in
:mod:`cinemagraph.data.scene`): the source image, its exact z-depth, the Eulerian motion
field and fluid mask, the source intrinsics, and for each camera path the ground-truth
frames of

* ``anim``: the animation seen from the source camera (the same for every path);
* ``nvs``: the static scene (frame 0's appearance) seen along the path;
* ``both``: the animation seen along the path;

with a validity mask per frame (pixels where every sub-pixel ray hits a surface). Frames
are ray-cast against the analytic surfaces (:func:`cinemagraph.data.scene.render_view`),
never splatted, so evaluation never grades the method with its own renderer. Frame ``t``
of ``anim`` and ``both`` shows the fluids after ``t`` frames of flow; camera paths are the
renderer's named paths (:func:`cinemagraph.render.camera.named_path`) with the scene's near
depth (1) and median depth.

Layout on disk::

    DIR/dataset.json                 generator settings, splits, photograph lists
    DIR/<split>/scene_00000/
        image.png                    source image (8-bit RGB)
        depth.npy                    (H, W) float32 z-depth, near depth (2nd percentile) 1
        motion.npy                   (2, H, W) float32, (dx, dy) source pixels per frame
        mask.png                     fluid mask (255 = fluid)
        camera.json                  {"K": 3x3, "world_to_camera": 4x4 identity, "near", "median"}
        scene.json                   the scene's rectangles, textures, seed and split
        anim/frame_00000.png ...     animation from the source camera; anim/valid.npy
        <path>/camera.json           {"K": [F x 3x3], "world_to_camera": [F x 4x4], "closed"}
        <path>/nvs/frame_*.png, <path>/nvs/valid.npy
        <path>/both/frame_*.png, <path>/both/valid.npy

``valid.npy`` is ``(F, H, W)`` bool. Each scene folder is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..depth.base import median_depth
from ..errors import UserError
from ..render.camera import NAMED_PATHS, named_path
from .scene import SPLITS, Scene, render_views, sample_scene, scene_seed, source_geometry
from .textures import PHOTOS

log = logging.getLogger(__name__)

KINDS = ("anim", "nvs", "both")


def make_sample(scene: Scene, frames: int, paths: tuple[str, ...] = ("circle",),
                kinds: tuple[str, ...] = KINDS, supersample: int = 2, device=None,
                frame_indices: list[int] | None = None) -> dict:
    """Return the ground truth of ``scene`` as tensors on ``device``.

    Keys: ``image (3, H, W)``, ``depth (1, H, W)``, ``motion (2, H, W)``, ``mask (1, H, W)``
    bool, ``K (3, 3)``, ``near``, ``median``; ``anim`` ``{"frames": (F, 3, H, W),
    "valid": (F, H, W)}``; and per path ``{"world_to_camera": (F, 4, 4), "K": (F, 3, 3),
    "closed", "nvs": {...}, "both": {...}}``. ``frame_indices`` picks some of the ``frames``
    (all by default); the paths are always ``frames`` long.
    """
    st = scene.tensors(device)
    K = scene.K.to(device)
    size = scene.size
    geometry = scene.geometry
    if geometry is None or geometry["depth"].device != K.device:
        geometry = source_geometry(st, K, size)
    eye = torch.eye(4, device=device)
    image, _ = render_views(st, eye[None], K[None], size, [0.0], supersample)
    near, median = 1.0, median_depth(geometry["depth"])
    indices = list(range(frames)) if frame_indices is None else list(frame_indices)
    out = {"image": image[0], "depth": geometry["depth"], "motion": geometry["motion"],
           "mask": geometry["mask"], "K": K, "near": near, "median": median,
           "frame_indices": indices}

    def sequence(poses, Ks, animated):
        pick = torch.tensor(indices, device=poses.device)
        times = pick.float() if animated else torch.zeros(len(indices), device=poses.device)
        frames_, valid = render_views(st, poses[pick], Ks[pick], size, times, supersample)
        return {"frames": frames_, "valid": valid}

    if "anim" in kinds:
        out["anim"] = sequence(eye.expand(frames, 4, 4), K.expand(frames, 3, 3), True)
    for name in paths:
        path = named_path(name, frames, scene.K, near, median)
        poses, Ks = path.world_to_camera.to(device), path.K.to(device)
        entry = {"world_to_camera": poses, "K": Ks, "closed": path.closed}
        if "nvs" in kinds:
            entry["nvs"] = sequence(poses, Ks, False)
        if "both" in kinds:
            entry["both"] = sequence(poses, Ks, True)
        out[name] = entry
    return out


def _png(path: Path, image: Tensor) -> None:
    import imageio.v3 as iio

    array = (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    iio.imwrite(path, array)


def _write_sequence(folder: Path, seq: dict) -> None:
    folder.mkdir(parents=True)
    for i, frame in enumerate(seq["frames"]):
        _png(folder / f"frame_{i:05d}.png", frame)
    np.save(folder / "valid.npy", seq["valid"].cpu().numpy())


def write_sample(folder: Path, scene: Scene, sample: dict, paths: tuple[str, ...]) -> None:
    """Write ``sample`` of ``scene`` to ``folder`` (see the module docstring), atomically."""
    import imageio.v3 as iio

    tmp = folder.with_name(folder.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _png(tmp / "image.png", sample["image"])
    np.save(tmp / "depth.npy", sample["depth"][0].cpu().numpy().astype(np.float32))
    np.save(tmp / "motion.npy", sample["motion"].cpu().numpy().astype(np.float32))
    iio.imwrite(tmp / "mask.png", (sample["mask"][0].cpu().numpy() * 255).astype(np.uint8))
    camera = {"K": sample["K"].cpu().tolist(), "world_to_camera": torch.eye(4).tolist(),
              "near": sample["near"], "median": sample["median"]}
    (tmp / "camera.json").write_text(json.dumps(camera, indent=1))
    (tmp / "scene.json").write_text(json.dumps(scene.describe(), indent=1))
    if "anim" in sample:
        _write_sequence(tmp / "anim", sample["anim"])
    for name in paths:
        entry = sample[name]
        (tmp / name).mkdir()
        (tmp / name / "camera.json").write_text(json.dumps(
            {"K": entry["K"].cpu().tolist(), "world_to_camera": entry["world_to_camera"].cpu().tolist(),
             "closed": entry["closed"]}))
        for kind in ("nvs", "both"):
            if kind in entry:
                _write_sequence(tmp / name / kind, entry[kind])
    tmp.rename(folder)


def contact_sheet(samples: list[dict], path: Path) -> None:
    """Save a PNG with one row per sample: image, depth, motion (colour-coded), fluid mask."""
    import imageio.v3 as iio

    from ..visualize import depth_picture, flow_picture

    rows = []
    for s in samples:
        image = s["image"][None].cpu()
        rgb = (image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        depth = depth_picture(s["depth"][None].cpu())
        flow = flow_picture(image, s["motion"][None].cpu(), s["mask"][None].cpu())
        mask = np.repeat(s["mask"][0].cpu().numpy()[..., None] * 255, 3, axis=2).astype(np.uint8)
        rows.append(np.concatenate([rgb, depth, flow, mask], axis=1))
    tmp = path.with_name(path.name + ".partial.png")
    iio.imwrite(tmp, np.concatenate(rows, axis=0))
    tmp.replace(path)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must be WIDTHxHEIGHT, like 512x384; got '{text}'") from None
    if w < 16 or h < 16:
        raise UserError(f"--size {text} is too small: use at least 16x16")
    return h, w


def _parse_paths(text: str) -> tuple[str, ...]:
    names = NAMED_PATHS if text == "all" else tuple(p for p in text.split(",") if p)
    for name in names:
        if name not in NAMED_PATHS:
            raise UserError(f"unknown camera path '{name}': use 'all' or names among "
                            f"{', '.join(NAMED_PATHS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cinemagraph.data.synthetic",
                                description="Write synthetic 3D cinemagraph scenes with exact "
                                "ground truth (see the module docstring for the layout).")
    p.add_argument("--out", required=True, type=Path, help="dataset folder")
    p.add_argument("--scenes", type=int, required=True, help="number of scenes to write")
    p.add_argument("--seed", type=int, default=0, help="dataset seed")
    p.add_argument("--split", default="train", choices=sorted(SPLITS),
                   help="train and test never share photographs or seeds")
    p.add_argument("--first", type=int, default=0, help="index of the first scene")
    p.add_argument("--size", default="512x384", help="WIDTHxHEIGHT")
    p.add_argument("--frames", type=int, default=60, help="frames per sequence")
    p.add_argument("--paths", default="zoom-in,circle",
                   help="comma-separated camera paths, or 'all'")
    p.add_argument("--supersample", type=int, default=2,
                   help="rays per pixel per axis (antialiasing)")
    p.add_argument("--contact-sheet", type=Path, help="also save a PNG of the scenes' image, "
                   "depth, motion and mask")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--overwrite", action="store_true", help="replace existing scene folders")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..device import select_device

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        size = _parse_size(args.size)
        paths = _parse_paths(args.paths)
        if args.scenes < 1 or args.frames < 1 or args.supersample < 1:
            raise UserError("--scenes, --frames and --supersample must be at least 1")
        device = select_device(args.device)
        root = args.out / args.split
        folders = [root / f"scene_{args.first + i:05d}" for i in range(args.scenes)]
        existing = [f for f in folders if f.exists()]
        if existing and not args.overwrite:
            raise UserError(f"'{existing[0]}' already exists: pass --overwrite to replace it, "
                            "or --first to continue after it")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create '{root}' ({e.strerror}): choose another --out") from None
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings = {"seed": args.seed, "size": [size[1], size[0]], "frames": args.frames,
                "paths": list(paths), "supersample": args.supersample,
                "photos": {k: list(v) for k, v in PHOTOS.items()},
                "seeds": "numpy SeedSequence([seed, split code, index]); split codes "
                         + json.dumps(SPLITS)}
    (args.out / "dataset.json").write_text(json.dumps(settings, indent=1))
    from tqdm import tqdm

    sheet = []
    start = time.perf_counter()
    for i, folder in enumerate(tqdm(folders, desc="scenes", unit="scene")):
        index = args.first + i
        scene = sample_scene(scene_seed(args.seed, args.split, index), args.split, size, device)
        sample = make_sample(scene, args.frames, paths, supersample=args.supersample,
                             device=device)
        if folder.exists():
            shutil.rmtree(folder)
        write_sample(folder, scene, sample, paths)
        if args.contact_sheet and len(sheet) < 6:
            sheet.append({k: sample[k] for k in ("image", "depth", "motion", "mask")})
    log.info("wrote %d scene(s) to '%s' in %.1f s", len(folders), root,
             time.perf_counter() - start)
    if args.contact_sheet:
        contact_sheet(sheet, args.contact_sheet)
        log.info("contact sheet: '%s'", args.contact_sheet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
