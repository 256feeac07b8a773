"""Training data of the motion network: photos with their ground-truth motion, and hints
sampled from it as users would draw them.

Two sources, one item format (``image (3, S, S)`` in ``[-1, 1]``, ``mask (1, S, S)``,
``hint (2, S, S)``, ``motion (2, S, S)`` in pixels per frame on the ``S x S`` grid):

* :class:`EulerianVideos`, the layout of the original training set (Holynski et al.'s
  Eulerian motion data, as SLR-SFS's loader reads it; 3D Cinemagraphy's repository ships no
  motion-training code)::

      ROOT/SPLIT/ID.mp4               the video (its first frame is the input photo)
      ROOT/SPLIT/ID_input.jpg         optional: the input photo, used instead of frame 0
      ROOT/SPLIT/ID_motion.pth        the video's motion: (1, 2, H, W) float32 pixels per
                                      frame, an LZ4 frame of a pickled numpy array
      ROOT/SPLIT/ID_motion.npy        or the same array as plain .npy

  ``SPLIT`` is ``train`` or ``validation``. The ``.pth`` files are read with an unpickler
  that only rebuilds numpy arrays (nothing else in them can run), and need the ``lz4``
  package. Each item is a random square crop (the photo's short side), flipped left-right
  at random (the motion's x flips sign), resized to ``S``.
* :class:`SyntheticMotion`: the synthetic scenes (:mod:`cinemagraph.data`), whose motion is
  exact.

Hints (:func:`sample_hints`), as the original trains: the moving region is where the speed
is at least a tenth of the mean speed (and not zero); ``k`` hints (1 to ``max_hints``, at random) sit at the
k-means centres of the moving pixels and carry the motion there; each is spread by a
Gaussian of random width in ``[S / 2k, 2S / k)``, normalised, masked. With probability
``hint_dropout`` the hint map is left empty, so the network also learns motion from the
photo alone (``--motion auto``). All randomness comes from the item's own generator: item
``i`` of an epoch is the same on every run.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from ..motion.hints import MotionHints
from ..motion.network import dense_hints

#: Fraction of the mean speed under which a pixel counts as static (the original's 0.1).
STATIC_FRACTION = 0.1


def kmeans(points: Tensor, k: int, generator: torch.Generator, iterations: int = 10) -> Tensor:
    """Return ``k`` cluster centres ``(k, 2)`` of ``points (N, 2)`` (Lloyd's algorithm from
    ``k`` distinct random points)."""
    k = min(k, points.shape[0])
    centres = points[torch.randperm(points.shape[0], generator=generator)[:k]].clone()
    for _ in range(iterations):
        labels = torch.cdist(points, centres).argmin(1)
        for j in range(k):
            members = points[labels == j]
            if members.numel():
                centres[j] = members.mean(0)
    return centres


def moving_region(motion: Tensor) -> Tensor:
    """Return the moving region ``(1, H, W)`` of ``motion (2, H, W)`` as 0/1."""
    speed = motion.norm(dim=0, keepdim=True)
    return (speed >= STATIC_FRACTION * speed.mean()).float() * (speed > 0).float()


def sample_hints(motion: Tensor, mask: Tensor, generator: torch.Generator, max_hints: int = 5,
                 dropout: float = 0.0, max_points: int = 4096) -> Tensor:
    """Return a dense hint map ``(2, H, W)`` sampled from ``motion`` (module docstring)."""
    _, h, w = motion.shape
    hint = torch.zeros_like(motion)
    if torch.rand((), generator=generator).item() < dropout or mask.sum() < 1:
        return hint
    k = int(torch.randint(1, max_hints + 1, (), generator=generator))
    ys, xs = mask[0].nonzero(as_tuple=True)
    points = torch.stack([xs, ys], 1).float()
    if points.shape[0] > max_points:
        points = points[torch.randperm(points.shape[0], generator=generator)[:max_points]]
    centres = kmeans(points, k, generator).round().long()
    k = centres.shape[0]
    vectors = motion[:, centres[:, 1], centres[:, 0]].t()  # (k, 2)
    low, high = max(1, h // (2 * k)), max(2, int(h / (k / 2)))
    sigma = float(torch.randint(low, max(high, low + 1), (), generator=generator))
    return dense_hints(MotionHints(centres.float(), vectors), (h, w), mask[None], sigma)[0]


def _generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The item's own random generator, the same for the same (seed, epoch, index)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def _item(image: Tensor, motion: Tensor, size: int, generator: torch.Generator, max_hints: int,
          dropout: float) -> dict:
    """Make a training item from ``image (3, h, w)`` in [0, 1] and ``motion (2, h, w)`` on the
    same grid: random square crop, random flip, resize to ``size``, hints."""
    _, h, w = image.shape
    side = min(h, w)
    top = int(torch.randint(0, h - side + 1, (), generator=generator))
    left = int(torch.randint(0, w - side + 1, (), generator=generator))
    image = image[:, top:top + side, left:left + side]
    motion = motion[:, top:top + side, left:left + side]
    if torch.rand((), generator=generator).item() < 0.5:
        image, motion = image.flip(-1), motion.flip(-1) * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
    image = F.interpolate(image[None], size=(size, size), mode="bicubic", align_corners=False,
                          antialias=True)[0].clamp(0, 1)
    motion = F.interpolate(motion[None], size=(size, size), mode="bilinear",
                           align_corners=False)[0] * (size / side)
    mask = moving_region(motion)
    hint = sample_hints(motion, mask, generator, max_hints, dropout)
    return {"image": image * 2 - 1, "mask": mask, "hint": hint, "motion": motion}


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def read_motion_file(path: Path) -> np.ndarray:
    """Return the ``(2, H, W)`` float32 motion of a ``_motion.pth`` (LZ4 + pickled numpy, read
    safely) or ``_motion.npy`` file."""
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            try:
                import lz4.frame
            except ImportError:
                raise UserError("reading the original's _motion.pth files needs the lz4 package "
                                "(pip install lz4), or convert them to .npy") from None
            array = _NumpyOnly(io.BytesIO(lz4.frame.decompress(path.read_bytes()))).load()
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read motion file '{path}' ({type(e).__name__}: {e})") from None
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 2:
        raise UserError(f"motion file '{path}' holds an array of shape {array.shape}; expected "
                        "(1, 2, H, W) or (2, H, W)")
    return array


def write_motion_file(path: Path, motion: np.ndarray) -> None:
    """Write ``motion (1, 2, H, W)`` as the original's ``_motion.pth`` (LZ4 + pickle)."""
    import lz4.frame

    Path(path).write_bytes(lz4.frame.compress(pickle.dumps(np.asarray(motion, np.float32))))


class EulerianVideos(torch.utils.data.Dataset):
    """The original training set's layout (module docstring)."""

    def __init__(self, root: str | Path, split: str = "train", size: int = 256,
                 max_hints: int = 5, hint_dropout: float = 0.1, seed: int = 0):
        self.folder = Path(root) / split
        if not self.folder.is_dir():
            raise UserError(f"no folder '{self.folder}': the Eulerian data layout is "
                            "ROOT/{train,validation}/ID.mp4 with ID_motion.pth beside each video")
        self.ids = []
        for video in sorted(self.folder.glob("*.mp4")):
            if self._motion_path(video.stem) is not None:
                self.ids.append(video.stem)
        if not self.ids:
            raise UserError(f"'{self.folder}' has no video with its ID_motion.pth or "
                            "ID_motion.npy")
        self.size, self.max_hints, self.hint_dropout, self.seed = size, max_hints, hint_dropout, seed
        self.epoch = 0

    def _motion_path(self, vid: str) -> Path | None:
        for suffix in ("_motion.pth", "_motion.npy"):
            if (self.folder / f"{vid}{suffix}").is_file():
                return self.folder / f"{vid}{suffix}"
        return None

    def __len__(self) -> int:
        return len(self.ids)

    def photo(self, vid: str) -> np.ndarray:
        """Return the input photo ``(H, W, 3)`` uint8 of video ``vid``."""
        import imageio.v2 as imageio

        for ext in (".jpg", ".png"):
            still = self.folder / f"{vid}_input{ext}"
            if still.is_file():
                return np.asarray(imageio.imread(still))[..., :3]
        reader = imageio.get_reader(self.folder / f"{vid}.mp4", "ffmpeg")
        try:
            return np.asarray(reader.get_data(0))[..., :3]
        finally:
            reader.close()

    def __getitem__(self, index: int) -> dict:
        vid = self.ids[index]
        generator = _generator(self.seed, self.epoch, index)
        photo = torch.from_numpy(self.photo(vid)).permute(2, 0, 1).float() / 255.0
        motion = torch.from_numpy(read_motion_file(self._motion_path(vid)))
        if motion.shape[-2:] != photo.shape[-2:]:
            sy, sx = photo.shape[-2] / motion.shape[-2], photo.shape[-1] / motion.shape[-1]
            motion = F.interpolate(motion[None], size=photo.shape[-2:], mode="bilinear",
                                   align_corners=False)[0] * torch.tensor([sx, sy]).view(2, 1, 1)
        return _item(photo, motion, self.size, generator, self.max_hints, self.hint_dropout)


class SyntheticMotion(torch.utils.data.Dataset):
    """Motion items from the synthetic scenes of ``split`` (exact motion, generated on the fly)."""

    def __init__(self, length: int, split: str = "train", size: int = 256,
                 scene_size: tuple[int, int] = (256, 320), max_hints: int = 5,
                 hint_dropout: float = 0.1, seed: int = 0):
        self.length, self.split, self.size = length, split, size
        self.scene_size = tuple(scene_size)
        self.max_hints, self.hint_dropout, self.seed = max_hints, hint_dropout, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        from ..data.scene import sample_scene, scene_seed
        from ..data.synthetic import make_sample

        seed = scene_seed(self.seed, self.split, index)
        sample = make_sample(sample_scene(seed, self.split, self.scene_size), 1, paths=(),
                             kinds=(), supersample=1)
        generator = _generator(self.seed, self.epoch, index)
        return _item(sample["image"].clamp(0, 1), sample["motion"] * sample["mask"], self.size,
                     generator, self.max_hints, self.hint_dropout)
