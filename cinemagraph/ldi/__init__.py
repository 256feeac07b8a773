"""Layered depth images: the RGBD photo split at depth discontinuities, hidden parts inpainted."""

from .builder import LDISettings, build_layered_depth_image
from .inpaint import Inpainter, PushPullInpainter
from .layers import assign_layers, disparity_bins
from .scene import LayeredDepthImage
from .sequential import SequentialSettings, sequential_layered_depth_image

__all__ = ["Inpainter", "LDISettings", "LayeredDepthImage", "PushPullInpainter",
           "SequentialSettings", "assign_layers", "build_layered_depth_image", "disparity_bins",
           "sequential_layered_depth_image"]
