"""Motion stage: a moving region and sparse hints in, an Eulerian motion field out.

Hints come from a labelme file (the original demo's format), a hints JSON, or the command
line (:mod:`.hints`); :class:`HintInterpolator` turns them into a dense field; the learned
motion network plugs in behind :class:`MotionEstimator`; both fade the field to zero speed
at the mask's edge (:mod:`.fade`). :mod:`.integrate` turns a field into displacements over
time.
"""

from .field import MotionEstimator, MotionField
from .hints import HINT_FRAMES, MotionHints, parse_hint_arg, read_hints_json, read_labelme, read_mask
from .integrate import integrate_displacements
from .interpolate import HintInterpolator

__all__ = ["HINT_FRAMES", "HintInterpolator", "MotionEstimator", "MotionField", "MotionHints",
           "integrate_displacements", "parse_hint_arg", "read_hints_json", "read_labelme",
           "read_mask"]
