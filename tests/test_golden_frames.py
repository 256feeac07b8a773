"""The frames users get do not change: tiny renders of the example photo held to golden
frames (``tests/golden/frames.npz``, made by ``tests/golden/make_golden.py``): the default
render with the shipped weights, the learned decoder's enlarged correction, and the
built-in decoder with and without 3D symmetric animation."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from make_golden import CASES, HERE, render_case  # noqa: E402

GOLDEN = np.load(HERE / "frames.npz")


@pytest.mark.parametrize("name", sorted(CASES))
def test_frames_equal_the_golden_frames(name, tmp_path):
    frames = render_case(CASES[name], tmp_path).astype(int)
    golden = GOLDEN[name].astype(int)
    assert frames.shape == golden.shape
    difference = np.abs(frames - golden)
    # Float rounding may move a value across an 8-bit step, nothing more.
    assert difference.max() <= 1, f"{name}: frames differ by up to {difference.max()} steps"
    assert (difference > 0).mean() < 0.01, f"{name}: {(difference > 0).mean():.2%} differ"
