"""Depth stage: a photo in, z-depth ``(1, 1, H, W)`` out.

Estimators follow :class:`DepthEstimator`. Built in: :class:`GroundPlanePrior` (no learned
weights). A depth file given by the user replaces the estimator (:func:`load_depth_file`).
The learned DPT models plug in behind the same interface.
"""

from .base import DepthEstimator, normalize_depth, repair_depth
from .from_file import load_depth_file
from .prior import GroundPlanePrior, PriorSettings

__all__ = ["DepthEstimator", "GroundPlanePrior", "PriorSettings", "load_depth_file",
           "normalize_depth", "repair_depth"]
