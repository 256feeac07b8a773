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
            raise ValueError(f"unknown split '{split}': use {', '.join(SPLITS)}")
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


class Prefetcher:
    """Iterate over ``items`` (an iterable of dataset items) ``depth`` items ahead, in a
    background thread, on a CUDA stream of its own when the items live on a GPU.

    Generating a synthetic item is mostly Python issuing small GPU kernels, while a training
    step mostly waits on the GPU; in a thread, the next items are made while the step runs,
    so training does not wait on data as long as an item takes less time than a step.
    Each item is handed over once its kernels have finished on the producer's stream, and
    its tensors are recorded on the consumer's stream so their memory is not reused early.
    """

    def __init__(self, items, depth: int = 2, device=None):
        import queue
        import threading

        self.device = torch.device(device) if device is not None else None
        self.queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._fill, args=(iter(items),), daemon=True)
        self.thread.start()

    def _fill(self, items) -> None:
        cuda = self.device is not None and self.device.type == "cuda"
        stream = torch.cuda.Stream(self.device) if cuda else None
        try:
            with torch.cuda.stream(stream) if cuda else _null():
                for item in items:
                    event = None
                    if cuda:
                        event = torch.cuda.Event()
                        event.record(stream)
                    self.queue.put((item, event, None))
        except BaseException as error:  # handed to the consumer, raised there
            self.queue.put((None, None, error))
            return
        self.queue.put((None, None, StopIteration()))

    def __iter__(self):
        return self

    def __next__(self):
        item, event, error = self.queue.get()
        if error is not None:
            raise error
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            _record(item, current)
        return item


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _record(value, stream) -> None:
    if isinstance(value, torch.Tensor):
        if value.is_cuda:
            value.record_stream(stream)
    elif isinstance(value, dict):
        for v in value.values():
            _record(v, stream)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _record(v, stream)
