"""Helpers for the conformance data in ../shared/conformance (see its README)."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import torch


def rule_weights(keys: dict) -> dict:
    """Return the README's deterministic weights for a ``{key: shape}`` layout."""
    out = {}
    for name, shape in keys.items():
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        shape = tuple(shape)
        numel = math.prod(shape)
        if name.endswith("num_batches_tracked"):
            value = torch.zeros(shape, dtype=torch.long)
        elif name.endswith("mask_conv.weight"):
            value = torch.ones(shape)
        elif name.endswith("running_var"):
            value = 1.0 + 0.1 * torch.rand(shape, generator=g)
        elif name.endswith("running_mean"):
            value = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("weight_u") or name.endswith("weight_v"):
            v = torch.randn(shape, generator=g)
            value = v / v.norm()
        elif len(shape) >= 2:
            value = torch.randn(shape, generator=g) / math.sqrt(numel / shape[0])
        elif len(shape) == 1 and name.endswith("weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            value = 0.1 * torch.randn(shape, generator=g)
        else:
            value = torch.tensor(1.0)
        out[name] = value
    return out


def check_rule_weights(weights: dict, check: dict) -> None:
    """Assert the weights match ``NAME.weights_check.json`` (sums and first values)."""
    for name, (total, total_abs, *first) in check.items():
        w = weights[name].double().flatten()
        assert math.isclose(w.sum().item(), total, rel_tol=1e-6, abs_tol=1e-6), name
        assert math.isclose(w.abs().sum().item(), total_abs, rel_tol=1e-6, abs_tol=1e-6), name
        for got, want in zip(w[:3].tolist(), first):
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7), name


def relative_errors(a: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """Return ``(max_rel, rms_rel)`` as the README defines them."""
    a, ref = a.double(), ref.double()
    max_rel = ((a - ref).abs().max() / ref.abs().max()).item()
    rms_rel = ((a - ref).square().mean().sqrt() / ref.square().mean().sqrt()).item()
    return max_rel, rms_rel


def load(folder, name: str):
    keys = json.loads((folder / f"{name}.keys.json").read_text())
    check = json.loads((folder / f"{name}.weights_check.json").read_text())
    arrays = dict(np.load(folder / f"{name}.npz"))
    return keys, check, {k: torch.from_numpy(v) for k, v in arrays.items()}
