import os
from pathlib import Path

import pytest
import torch

# The project's shared data (samples, full conformance data) beside the checkout; absent in a
# fresh clone. CINEMAGRAPH_TEST_SHARED points elsewhere (e.g. at an empty folder, to run the
# tests as a fresh clone would).
SHARED = Path(os.environ.get("CINEMAGRAPH_TEST_SHARED")
              or Path(__file__).resolve().parents[1].parent / "shared")


def textured(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth random colour texture ``(1, 3, H, W)`` in [0.1, 0.9], with detail to track."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 4 + 1, width // 4 + 1, generator=g)
    img = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear",
                                          align_corners=False)
    return 0.1 + 0.8 * img


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (shared samples are not part of the project)")
    return path
