"""Image and video input/output, with outputs written to a temporary name and renamed."""

from .image import load_image, save_image
from .output import AtomicOutput, check_output_dir
from .video import write_video

__all__ = ["load_image", "save_image", "AtomicOutput", "check_output_dir", "write_video"]
