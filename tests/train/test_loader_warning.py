"""The data loader's worker processes: the automatic count (``trainer.num_workers=-1``, the
default), the warning for a GPU run asked to make its batches in the main process, and
batches that do not depend on the count (to float rounding)."""
import dataclasses
from itertools import islice

import numpy as np
import pytest
import torch

from cinemagraph.errors import UserError
from cinemagraph.train.loop import AUTO_WORKERS, loader_warning, loader_workers

from .configs import config


def test_cuda_without_workers_is_warned_with_a_worker_count():
    message = loader_warning("cuda", 0, 16)
    assert message is not None
    assert "trainer.num_workers=15" in message


def test_no_warning_with_workers_automatic_or_on_the_cpu():
    assert loader_warning("cuda", 15, 16) is None
    assert loader_warning("cuda", AUTO_WORKERS, 16) is None
    assert loader_warning("cpu", 0, 2) is None


def test_unknown_cpu_count_still_names_a_positive_count():
    assert "trainer.num_workers=1" in loader_warning("cuda", 0, None)


def test_the_automatic_count_is_the_cpus_less_one_on_a_gpu_and_none_on_the_cpu():
    assert loader_workers(AUTO_WORKERS, "cuda", 16) == 15
    assert loader_workers(AUTO_WORKERS, "cuda", 1) == 1
    assert loader_workers(AUTO_WORKERS, "cuda", None) == 1
    assert loader_workers(AUTO_WORKERS, "cpu", 16) == 0
    assert loader_workers(0, "cuda", 16) == 0 and loader_workers(3, "cpu", 16) == 3
    with pytest.raises(UserError, match="trainer.num_workers=-2"):
        loader_workers(-2, "cuda", 16)


def test_the_default_is_automatic_and_a_cpu_run_keeps_the_main_process(tmp_path):
    from cinemagraph.train.loop import Trainer

    cfg = config(["experiment=motion_synthetic", "trainer.device=cpu"])
    assert cfg.trainer.num_workers == AUTO_WORKERS
    assert Trainer(cfg, tmp_path, torch.device("cpu")).workers == 0


def _same(a, b) -> bool:
    """Whether two items (tensors, arrays, dataclasses, containers, plain values) are equal,
    floating-point tensors to within 1e-6: a worker process computes with one thread, the main
    process with several, which rounds some sums differently (by 1 in the last place)."""
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        if a.is_floating_point():
            return torch.allclose(a, b, rtol=0.0, atol=1e-6)
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dict__"):
        return type(a) is type(b) and _same(vars(a), vars(b))
    return a == b


def test_spacetime_batches_are_the_same_whatever_the_worker_count(tmp_path):
    from cinemagraph.train.spacetime import SpaceTimeTrainer

    small = ["experiment=spacetime_base", "spacetime.data.scenes=2", "spacetime.data.size=[48,64]",
             "spacetime.data.frames=4", "trainer.batch_size=1",
             "trainer.device=cpu"]
    batches = []
    for workers in (0, 2):
        cfg = config(small + [f"trainer.num_workers={workers}"])
        trainer = SpaceTimeTrainer(cfg, tmp_path / str(workers), torch.device("cpu"))
        assert trainer.workers == workers
        batches.append(list(islice(trainer.batches(trainer.dataset), 2)))
    assert _same(batches[0], batches[1])
    assert not _same(batches[0][0], batches[0][1])  # the comparison can tell items apart
