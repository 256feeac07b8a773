"""cinemagraph: 3D cinemagraphs from a single photo.

A re-implementation of "3D Cinemagraphy from a Single Image" (Li et al., CVPR 2023).
The front door is :func:`prepare` (:mod:`cinemagraph.api`): a photo and
:class:`RenderOptions` in, a :class:`PreparedScene` that renders frames for any camera path.
The coordinate and tensor conventions of the whole package are written once, in
:mod:`cinemagraph.conventions`.
"""

__version__ = "0.1.0"

from .api import PreparedScene, RenderOptions, prepare  # noqa: E402

__all__ = ["PreparedScene", "RenderOptions", "prepare"]
