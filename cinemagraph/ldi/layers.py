"""Splitting a disparity map into layers at its discontinuities.

As the original (after 3D Moments' ``get_depth_bins``): the disparity, sampled every 10th
pixel and normalised to ``[0, 1]``, is clustered by Ward's agglomerative clustering, stopping
where the merge distance exceeds 5. Ward distances grow with the square root of the number
of samples, so we pick the sampling step that gives about as many samples as the original's
every-10th-pixel on a 1280x720 photo (9216): the threshold then means the same at any size. Layers must be disparity intervals, so clusters merge
only with their neighbours in disparity order; the values are first gathered in 1024
histogram bins (clusters of equal values merge at no cost, so this only rounds the values).
If more than ``max_layers`` clusters remain, merging goes on until ``max_layers`` are left.
"""

from __future__ import annotations

import heapq

import torch
from torch import Tensor

#: Ward distance above which two clusters stay apart (the original's threshold).
WARD_THRESHOLD = 5.0
HISTOGRAM_BINS = 1024
SAMPLES = 128 * 72


def disparity_bins(disparity: Tensor, max_layers: int = 4,
                   threshold: float = WARD_THRESHOLD) -> Tensor:
    """Return the disparity thresholds ``(L - 1,)`` between layers, in decreasing order.

    A pixel belongs to layer ``i`` (0 = nearest) when its disparity is below the first ``i``
    thresholds and not below the others (:func:`assign_layers`).
    """
    h, w = disparity.shape[-2:]
    step = max(1, round((h * w / SAMPLES) ** 0.5))
    sample = disparity[..., ::step, ::step].flatten().double()
    lo, hi = sample.min().item(), sample.max().item()
    if hi - lo < 1e-9 or max_layers <= 1:
        return torch.zeros(0, dtype=disparity.dtype)
    norm = (sample - lo) / (hi - lo)
    index = (norm * (HISTOGRAM_BINS - 1)).round().long()
    counts = torch.bincount(index, minlength=HISTOGRAM_BINS).double()
    sums = torch.bincount(index, weights=norm, minlength=HISTOGRAM_BINS)
    keep = counts > 0
    # Each cluster: [count, mean, lowest value]; a doubly linked list in disparity order.
    n = counts[keep].tolist()
    mean = (sums[keep] / counts[keep]).tolist()
    low = mean.copy()
    prev = list(range(-1, len(n) - 1))
    nxt = list(range(1, len(n) + 1))
    nxt[-1] = -1
    alive = [True] * len(n)

    def cost(a: int, b: int) -> float:
        return (2.0 * n[a] * n[b] / (n[a] + n[b])) ** 0.5 * abs(mean[a] - mean[b])

    heap = [(cost(i, i + 1), i, i + 1) for i in range(len(n) - 1)]
    heapq.heapify(heap)
    clusters = len(n)
    while heap and clusters > 1:
        d, a, b = heap[0]
        if not (alive[a] and alive[b] and nxt[a] == b):
            heapq.heappop(heap)
            continue
        if d > threshold and clusters <= max_layers:
            break
        heapq.heappop(heap)
        total = n[a] + n[b]
        mean[a] = (n[a] * mean[a] + n[b] * mean[b]) / total
        n[a], low[a] = total, min(low[a], low[b])
        alive[b] = False
        nxt[a] = nxt[b]
        if nxt[b] != -1:
            prev[nxt[b]] = a
            heapq.heappush(heap, (cost(a, nxt[b]), a, nxt[b]))
        if prev[a] != -1:
            heapq.heappush(heap, (cost(prev[a], a), prev[a], a))
        clusters -= 1
    lows = sorted((low[i] for i in range(len(n)) if alive[i]), reverse=True)
    # The lowest value of each cluster but the farthest one separates it from the next.
    thresholds = torch.tensor(lows[:-1], dtype=torch.float64) * (hi - lo) + lo
    return thresholds.to(disparity.dtype)


def assign_layers(disparity: Tensor, thresholds: Tensor) -> Tensor:
    """Return the layer index ``(B, 1, H, W)`` of each pixel; 0 is the nearest layer."""
    thresholds = thresholds.to(disparity.device, disparity.dtype)
    return (disparity[..., None] < thresholds).sum(-1).long()
