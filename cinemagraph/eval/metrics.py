"""Image metrics on valid pixels: PSNR, SSIM (scikit-image) and LPIPS (the ``lpips`` package).

Images are ``(3, H, W)`` in ``[0, 1]``; ``valid`` is ``(H, W)`` bool (pixels whose ground
truth is defined). Every metric is averaged over the valid pixels only.

* PSNR: ``10 log10(1 / MSE)`` over valid pixels and channels; ``inf`` for identical images.
  The comparison reports one PSNR per scene from the MSE averaged over all its frames
  (:func:`psnr_of_mse`), not the mean of per-frame PSNRs: frame 0 of a path from the source
  camera is the photo itself, which a method that copies it scores at 100-150 dB, and such
  frames would otherwise dominate the mean (they did in the table of 2026-11-24 09:00).
* SSIM: :func:`skimage.metrics.structural_similarity` with the settings of Wang et al. 2004
  (Gaussian weights, sigma 1.5, population covariance, ``data_range=1``), computed on the
  whole image, its SSIM map averaged over valid pixels.
* LPIPS: AlexNet LPIPS (v0.1, the ``lpips`` package, the variant used in the view-synthesis
  literature), inputs scaled to ``[-1, 1]``, its spatial map averaged over valid pixels.
  It needs torchvision's ImageNet AlexNet weights, ``alexnet-owt-7be5be79.pth``, in the torch
  hub cache (``torch.hub.get_dir()/checkpoints``; a machine with internet fetches it with
  ``python -c "import torchvision; torchvision.models.alexnet(weights='DEFAULT')"``). Where
  they are absent LPIPS is not computed and the reason is reported; no other network is ever
  used in its place.
* Worst window: the largest mean, over a ``window`` x ``window`` block of pixels, of each
  pixel's largest channel error, in 8-bit steps, invalid pixels counting 0. It finds a local
  change that a frame's PSNR averages away (the comparison reports it on frame 0, which
  should be the photo).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def psnr(pred: Tensor, target: Tensor, valid: Tensor) -> float:
    """Return the PSNR in dB of ``pred`` against ``target`` on ``valid`` pixels."""
    err = (pred.double() - target.double()).square().mean(0)[valid]
    if err.numel() == 0:
        return float("nan")
    mse = float(err.mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def mse(pred: Tensor, target: Tensor, valid: Tensor) -> float:
    """Return the mean squared error of ``pred`` against ``target`` on ``valid`` pixels."""
    err = (pred.double() - target.double()).square().mean(0)[valid]
    return float(err.mean()) if err.numel() else float("nan")


def psnr_of_mse(values) -> float:
    """Return the PSNR in dB of the mean of finite per-frame MSEs (``inf`` when it is 0)."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return float("nan")
    m = float(arr.mean())
    return math.inf if m == 0.0 else 10.0 * math.log10(1.0 / m)


def worst_window(pred: Tensor, target: Tensor, valid: Tensor, window: int = 32) -> float:
    """Return the largest ``window`` x ``window`` block mean of the per-pixel largest channel
    error of ``pred`` against ``target`` (valid pixels; the rest count 0), in 8-bit steps."""
    err = (pred.double() - target.double()).abs().amax(0) * valid
    size = min(window, *err.shape)
    blocks = torch.nn.functional.avg_pool2d(err[None, None], size, stride=1)
    return float(blocks.max()) * 255.0


def ssim_map(pred: Tensor, target: Tensor) -> Tensor:
    """Return the SSIM of ``pred`` against ``target`` (both ``(3, H, W)``) at every pixel,
    ``(H, W)`` float64 on the CPU, the mean over the channels (Gaussian window, sigma 1.5)."""
    from skimage.metrics import structural_similarity

    a = pred.detach().permute(1, 2, 0).cpu().double().numpy()
    b = target.detach().permute(1, 2, 0).cpu().double().numpy()
    _, full = structural_similarity(b, a, channel_axis=2, data_range=1.0, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, full=True)
    return torch.from_numpy(full.mean(axis=2))


def mean_over(values: Tensor, valid: Tensor) -> float:
    """The mean of ``values (H, W)`` (on the CPU) over the ``valid (H, W)`` pixels; NaN if
    none."""
    mask = valid.cpu().bool().numpy()
    return float(values.numpy()[mask].mean()) if mask.any() else float("nan")


def ssim(pred: Tensor, target: Tensor, valid: Tensor) -> float:
    """Return the mean SSIM of ``pred`` against ``target`` over ``valid`` pixels."""
    return mean_over(ssim_map(pred, target), valid)


def lpips_unavailable_reason() -> str | None:
    """Return why LPIPS cannot run here, or None if it can."""
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "the lpips package is not installed (pip install lpips)"
    path = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not path.exists():
        return f"torchvision's AlexNet weights are not in {path.parent} ({ALEXNET_FILE})"
    return None


class LPIPS:
    """AlexNet LPIPS on valid pixels (see the module docstring); raises if unavailable."""

    def __init__(self, device=None):
        reason = lpips_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"LPIPS unavailable: {reason}")
        import lpips

        self.model = lpips.LPIPS(net="alex", spatial=True, verbose=False).to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, pred: Tensor, target: Tensor, valid: Tensor) -> float:
        a = pred[None].to(self.device) * 2.0 - 1.0
        b = target[None].to(self.device) * 2.0 - 1.0
        dist = self.model(a, b)[0, 0]
        mask = valid.to(dist.device)
        return float(dist[mask].mean()) if bool(mask.any()) else float("nan")


def mean(values) -> float:
    """Mean of finite values, with ``inf`` kept when every value is ``inf`` (identical images)."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan")
    if np.isinf(arr).all():
        return float(arr[0])
    return float(arr[np.isfinite(arr)].mean())
