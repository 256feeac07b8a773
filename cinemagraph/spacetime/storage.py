"""How our weight files store tensors: fp16, or int8 with one scale per output channel.

A weight ``KEY`` stored as int8 sits beside its per-output-channel scales ``KEY`` +
:data:`INT8_SCALE` (fp32): ``value = int8 * scale``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError

#: Where an int8-stored tensor ``KEY`` keeps its per-channel scales: ``KEY`` + this.
INT8_SCALE = ".int8_scale"


def quantizable(value: Tensor) -> bool:
    """Whether ``value`` may be stored as int8: a floating tensor of two or more dimensions."""
    return value.is_floating_point() and value.dim() >= 2


def quantize(state: dict[str, Tensor], keys=None) -> dict[str, Tensor]:
    """``state`` with the floating tensors of two or more dimensions named in ``keys`` (all
    of them by default) stored as int8, one scale per output channel (its largest magnitude
    over 127); the rest fp16."""
    out = {}
    for key, value in state.items():
        value = value.detach().cpu()
        if quantizable(value) and (keys is None or key in keys):
            flat = value.float().reshape(value.shape[0], -1)
            scale = flat.abs().amax(1).clamp_min(1e-12) / 127.0
            out[key] = (flat / scale[:, None]).round().clamp(-127, 127).to(torch.int8) \
                .reshape(value.shape).contiguous()
            out[key + INT8_SCALE] = scale.contiguous()
        else:
            out[key] = (value.half() if value.is_floating_point() else value).contiguous()
    return out


def largest_first_int8(state: dict[str, Tensor], meta: dict[str, str], max_bytes: int,
                       tie=lambda key: 0.0) -> dict[str, Tensor]:
    """``state`` stored within ``max_bytes`` as a safetensors file with ``meta``: its largest
    quantizable tensors as int8 (:func:`quantize`), as few as that takes, the rest fp16.
    The largest go first because each saves the most bytes and spreads its rounding over the
    most weights; among tensors of one size, those of the lower ``tie(key)`` first. Raises
    ValueError where even int8 throughout does not fit."""
    from safetensors.torch import save

    order = sorted((k for k, v in state.items() if quantizable(v)),
                   key=lambda k: (-state[k].numel(), tie(k), k))
    chosen: set[str] = set()
    while True:
        stored = quantize(state, chosen)
        excess = len(save(stored, metadata=meta)) - max_bytes
        if excess <= 0:
            return stored
        if len(chosen) == len(order):
            raise ValueError(f"even in int8 throughout the file takes "
                             f"{(excess + max_bytes) / 1e6:.2f} MB, over {max_bytes / 1e6:g} MB")
        # Add tensors until their int8 saving covers the excess (checked by writing again).
        for key in order:
            if key not in chosen:
                chosen.add(key)
                excess -= state[key].numel() - 4 * state[key].shape[0]
                if excess <= 0:
                    break


def dequantize(state: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """``state`` with int8-stored tensors (:func:`quantize`) back in fp32; others as they are."""
    if not any(k.endswith(INT8_SCALE) for k in state):
        return state
    out = {}
    for key, value in state.items():
        if key.endswith(INT8_SCALE):
            continue
        scale = state.get(key + INT8_SCALE)
        if scale is None:
            out[key] = value
            continue
        if value.dtype != torch.int8 or scale.shape != value.shape[:1]:
            raise UserError(f"'{path}' holds a malformed int8 tensor '{key}': download or make "
                            "the file again")
        out[key] = value.float() * scale.float().reshape(-1, *([1] * (value.dim() - 1)))
    return out
