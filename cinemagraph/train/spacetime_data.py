"""Training videos for the feature network and decoder (``spacetime.data.source=videos``).

For users who have real looping-fluid videos with their motion, in the layout of the motion
network's data (:mod:`.motion_data`)::

    ROOT/SPLIT/ID.mp4            the video; frame 0 is the photo, frame t a target
    ROOT/SPLIT/ID_motion.pth     its Eulerian motion (pixels per frame), or ID_motion.npy
    ROOT/SPLIT/ID_depth.npy      optional: z-depth of frame 0, (H, W) float32, e.g. from
                                 ``python -m cinemagraph.depth frame0.png --save-npy``;
                                 without it the built-in depth prior is used

Each item gives ``anim`` samples as the synthetic scenes do
(:mod:`.spacetime_samples`): frame 0 with its depth and motion, frames ``t`` (1 to
``frames - 1``) as the targets from the source camera, and frame ``frames`` (or the last)
as the end photo of the backward cloud, all resized to ``size``. Every pixel of a video
frame is defined, so ``valid`` is all true.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..conventions import default_intrinsics
from ..errors import UserError
from .motion_data import EulerianVideos, moving_region, read_motion_file


class VideoAnimations(EulerianVideos):
    """See the module docstring."""

    kinds = ("anim",)

    def __init__(self, root, split: str = "train", size: tuple[int, int] = (192, 256),
                 frames: int = 30, seed: int = 0):
        super().__init__(root, split, size=256, seed=seed)
        self.out_size, self.frames = tuple(size), frames

    def _frames(self, vid: str, indices: list[int]) -> list[np.ndarray]:
        import imageio.v2 as imageio

        reader = imageio.get_reader(self.folder / f"{vid}.mp4", "ffmpeg")
        try:
            count = reader.count_frames()
            if count < 2:
                raise UserError(f"video '{vid}.mp4' has {count} frame(s); at least 2 are needed")
            return [np.asarray(reader.get_data(min(i, count - 1)))[..., :3] for i in indices]
        finally:
            reader.close()

    def scene(self, index: int, kind: str, path_name: str | None, frames: list[int],
              end: bool) -> dict:
        """Frame 0 with its depth, motion, mask and ``K``, the ``frames`` as targets, and
        frame ``N`` (``frames`` of the config, or the video's last) as the end photo with
        ``end`` (see :class:`~.spacetime_samples.SpaceTimeSamples`)."""
        from ..depth import GroundPlanePrior
        from ..depth.base import normalize_depth

        vid = self.ids[index]
        wanted = [0, *frames] + ([self.frames] if end else [])
        images = [torch.from_numpy(f).permute(2, 0, 1).float()[None] / 255.0
                  for f in self._frames(vid, wanted)]
        h0, w0 = images[0].shape[-2:]
        h, w = self.out_size
        resize = dict(size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        images = [F.interpolate(im, **resize)[0].clamp(0, 1) for im in images]
        motion = torch.from_numpy(read_motion_file(self._motion_path(vid)))[None]
        scale = torch.tensor([w / motion.shape[-1], h / motion.shape[-2]]).view(1, 2, 1, 1)
        motion = F.interpolate(motion, size=(h, w), mode="bilinear", align_corners=False) * scale
        depth_file = self.folder / f"{vid}_depth.npy"
        if depth_file.is_file():
            depth = torch.from_numpy(np.load(depth_file, allow_pickle=False).astype(np.float32))
            if depth.shape != (h0, w0):
                raise UserError(f"'{depth_file}' is {tuple(depth.shape)}; the video is {h0}x{w0}")
            depth = F.interpolate(depth[None, None], size=(h, w), mode="nearest")
        else:
            depth = GroundPlanePrior()(images[0][None])
        mask = moving_region(motion[0])[None] > 0
        n = len(frames)
        return {"image": images[0], "depth": normalize_depth(depth)[0],
                "motion": motion[0] * mask[0], "mask": mask[0],
                "K": default_intrinsics(h, w)[0], "path": None,
                "targets": torch.stack(images[1:1 + n]),
                "valid": torch.ones(n, h, w, dtype=torch.bool),
                "end": images[-1] if end else None}
