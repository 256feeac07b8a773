"""Write the golden frames that ``tests/test_golden_frames.py`` holds renders to.

    python tests/golden/make_golden.py

Each case is a render of the example photo at a tiny size through the command line, every
frame kept as PNG; the frames are stored as uint8 in ``frames.npz``. Regenerate only when a
change of the frames is intended, and say so in the commit.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: name -> the command line's arguments (beside the example, size, frames and output).
CASES = {
    "default_zoom-in": ["--camera", "zoom-in"],
    "learned_work64_circle": ["--camera", "circle", "--decoder", "learned",
                              "--decoder-size", "64"],
    "builtin_circle": ["--camera", "circle", "--decoder", "builtin"],
    "builtin_no-symmetric_swing": ["--camera", "swing", "--decoder", "builtin",
                                   "--no-symmetric"],
    "builtin_static_flow-scale": ["--camera", "static", "--decoder", "builtin",
                                  "--flow-scale", "2", "--max-layers", "2"],
}
SIZE, FRAMES = 96, 6


def render_case(args: list[str], work: Path) -> np.ndarray:
    """The frames ``(N, H, W, 3)`` uint8 of one case, rendered through the command line."""
    import imageio.v3 as iio

    from cinemagraph.cli.render import main

    frames = work / "frames"
    argv = ["--example", "rocket", "--max-size", str(SIZE), "--frames", str(FRAMES),
            "-o", str(work / "v.mp4"), "--save-frames", str(frames), "--device", "cpu",
            "-q", *args]
    if main(argv) != 0:
        raise SystemExit(f"render failed: {argv}")
    return np.stack([iio.imread(p)[..., :3] for p in sorted(frames.glob("*.png"))])


def main() -> None:
    out = {}
    for name, args in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = render_case(args, Path(tmp))
        print(name, out[name].shape)
    np.savez_compressed(HERE / "frames.npz", **out)


if __name__ == "__main__":
    sys.exit(main())
