"""Rendering stage: point cloud, animation, camera paths, splatting and blending.

``python -m cinemagraph.render`` runs the main job (see :mod:`cinemagraph.cli.render`).
The pipeline that ties the stages together is :mod:`cinemagraph.render.pipeline`.
"""

from .blend import symmetric_blend_weight
from .camera import NAMED_PATHS, CameraPath, build_camera_path, named_path
from .splat import SplatOutput, splat_points, splat_points_reference

__all__ = ["NAMED_PATHS", "CameraPath", "SplatOutput", "build_camera_path", "named_path",
           "splat_points", "splat_points_reference", "symmetric_blend_weight"]
