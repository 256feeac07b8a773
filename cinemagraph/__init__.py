"""cinemagraph: 3D cinemagraphs from a single photo.

A re-implementation of "3D Cinemagraphy from a Single Image" (Li et al., CVPR 2023).
The coordinate and tensor conventions of the whole package are written once, in
:mod:`cinemagraph.conventions`.
"""

__version__ = "0.1.0"
