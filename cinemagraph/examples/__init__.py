"""Example photos that ship with the project, with their motion hints.

``rocket``: scikit-image's ``data.rocket()`` (public domain, SpaceX), with the low clouds
between the launch towers drifting right (``rocket.json``, in this project's hints format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXAMPLES = {"rocket": "rocket.json"}


def example_photo(name: str) -> tuple[np.ndarray, Path]:
    """Return the photo ``(H, W, 3)`` uint8 of example ``name`` and the path of its hints."""
    from skimage import data

    return getattr(data, name)(), Path(__file__).with_name(EXAMPLES[name])
