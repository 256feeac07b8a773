"""Writing frames as MP4 (H.264 through imageio-ffmpeg), GIF or numbered PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .image import save_image


class VideoWriter:
    """Writes uint8 ``(H, W, 3)`` frames one at a time to an MP4, a GIF or a directory of PNGs.

    The format follows the suffix of ``path`` (``.mp4``, ``.gif``) or ``is_dir``.
    Use as a context manager; frames are streamed, not held in memory (except for GIF).
    """

    def __init__(self, path: Path, fps: float, is_dir: bool = False):
        self.path = Path(path)
        self.fps = fps
        self.is_dir = is_dir
        self.count = 0
        self._writer = None
        self._gif_frames: list[np.ndarray] = []

    def __enter__(self) -> "VideoWriter":
        suffix = self.path.suffix.lower()
        if not self.is_dir and suffix not in (".mp4", ".gif"):
            raise ValueError(f"unsupported video suffix '{suffix}'")
        if not self.is_dir and suffix == ".mp4":
            import imageio.v2 as imageio

            # macro_block_size=1: never resize frames (the pipeline keeps sizes even).
            self._writer = imageio.get_writer(
                self.path, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                quality=8, pixelformat="yuv420p", macro_block_size=1,
                ffmpeg_log_level="error")
        return self

    def append(self, frame: np.ndarray) -> None:
        """Write one uint8 ``(H, W, 3)`` frame."""
        if self.is_dir:
            save_image(self.path / f"frame_{self.count:05d}.png", frame)
        elif self._writer is not None:
            self._writer.append_data(frame)
        else:
            self._gif_frames.append(frame)
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._writer is not None:
            self._writer.close()
        elif self._gif_frames and exc_type is None:
            import imageio.v3 as iio

            iio.imwrite(self.path, np.stack(self._gif_frames), extension=".gif",
                        duration=1000.0 / self.fps, loop=0)
        return False


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, is_dir: bool = False) -> int:
    """Write all ``frames`` to ``path`` and return how many were written."""
    with VideoWriter(path, fps, is_dir=is_dir) as writer:
        for frame in frames:
            writer.append(frame)
    return writer.count
