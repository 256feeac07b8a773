"""The one place where the compute device is chosen."""

from __future__ import annotations

import torch

from .errors import UserError


def select_device(name: str | None = None) -> torch.device:
    """Return the device named ``name`` ("cpu", "cuda", "cuda:N"), or CUDA when present else CPU."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}': use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but CUDA is not available here: "
                        "use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def describe_device(device: torch.device) -> str:
    """The device in words, for logs and result tables: a GPU's name and CUDA version, or the
    CPU's model, the vector kernels torch uses on it and torch's thread count (float rounding,
    and so a few scores, can differ between them; ``benchmarks/RESULTS.md``, top)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), model)
    except OSError:
        pass
    return (f"CPU {model} ({torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads)")
