"""A PyTorch dataset that generates synthetic scenes on the fly, for training."""

from __future__ import annotations

import numpy as np
import torch

from .scene import SPLITS, sample_scene, scene_seed
from .synthetic import KINDS, make_sample


class SyntheticScenes(torch.utils.data.Dataset):
    """``length`` synthetic scenes of ``split``, generated when asked (nothing on disk).

    Item ``i`` is :func:`~cinemagraph.data.synthetic.make_sample` of scene ``i``: the same
    for the same ``(seed, split, i)``, on any run. ``frames_per_item`` picks that many of
    the ``frames`` at random (deterministic by index) instead of rendering all of them,
    which is what training wants. ``device`` renders on a GPU (use ``num_workers=0`` then:
    the generation is already parallel there).
    """

    def __init__(self, length: int, split: str = "train", seed: int = 0,
                 size: tuple[int, int] = (384, 512), frames: int = 60,
                 paths: tuple[str, ...] = ("circle",), kinds: tuple[str, ...] = KINDS,
                 frames_per_item: int | None = None, supersample: int = 1, device=None):
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}': use train or test")
        self.length, self.split, self.seed = length, split, seed
        self.size, self.frames, self.paths, self.kinds = size, frames, tuple(paths), tuple(kinds)
        self.frames_per_item, self.supersample, self.device = frames_per_item, supersample, device

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        seed = scene_seed(self.seed, self.split, index)
        scene = sample_scene(seed, self.split, self.size, self.device)
        indices = None
        if self.frames_per_item is not None:
            rng = np.random.default_rng([seed, 1])
            count = min(self.frames_per_item, self.frames)
            indices = sorted(rng.choice(self.frames, size=count, replace=False).tolist())
        return make_sample(scene, self.frames, self.paths, self.kinds, self.supersample,
                           self.device, indices)
