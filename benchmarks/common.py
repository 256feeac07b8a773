"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time

import torch

from cinemagraph.device import describe_device as device_name  # noqa: F401 (the scripts' import)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device: torch.device, runs: int = 5, warmup: int = 1) -> float:
    """Return the median wall time of ``fn()`` in seconds (CUDA events on the GPU)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)
