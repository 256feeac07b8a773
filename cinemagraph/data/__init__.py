"""Data: synthetic 3D cinemagraph scenes with exact ground truth.

:mod:`.scene` describes, samples and ray-casts the scenes; :mod:`.textures` provides their
textures; :mod:`.synthetic` turns a scene into ground-truth tensors and writes datasets
(``python -m cinemagraph.data.synthetic``); :mod:`.dataset` generates samples on the fly
for training (:class:`SyntheticScenes`).
"""

from .scene import Scene, render_view, sample_scene, scene_seed, source_geometry

__all__ = ["Scene", "SyntheticScenes", "make_sample", "render_view", "sample_scene",
           "scene_seed", "source_geometry"]


def __getattr__(name):
    # Imported on first use, so that ``python -m cinemagraph.data.synthetic`` does not find
    # its own module already imported by the package.
    if name == "make_sample":
        from .synthetic import make_sample

        return make_sample
    if name == "SyntheticScenes":
        from .dataset import SyntheticScenes

        return SyntheticScenes
    raise AttributeError(name)
