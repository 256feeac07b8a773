"""Where the files that ship with the package are: the Hydra configs and our weights.

In a source checkout (or an editable install of one) they are ``conf/`` and ``pretrained/``
beside the package. An installed wheel carries them inside the package, as
``cinemagraph/conf`` and ``cinemagraph/pretrained`` (``setup.py`` maps the two folders there
as package data; only the shipped weight file and the notes from ``pretrained/``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _shipped(name: str) -> Path | None:
    """The folder ``name`` inside the installed package, else beside the package in the
    source tree (recognised by its ``setup.py``), else None."""
    package = Path(str(files("cinemagraph")))
    if (package / name).is_dir():
        return package / name
    source = package.parent
    if (source / "setup.py").is_file() and (source / name).is_dir():
        return source / name
    return None


def conf_dir() -> Path:
    """The folder of the Hydra configs (``train.yaml``, ``render.yaml``, ``eval/``, ...)."""
    found = _shipped("conf")
    if found is None:
        raise FileNotFoundError("cinemagraph's configs are missing: neither the package's "
                                "conf/ nor a source checkout's conf/ was found")
    return found


def shipped_weights_dir() -> Path | None:
    """The folder of the weights that ship with the package (the last place searched for
    weight files), or None where there is none."""
    return _shipped("pretrained")
