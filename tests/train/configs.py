"""The project's Hydra configs, composed as ``python -m cinemagraph.train`` composes them
(the schemas are registered by ``conftest.py``)."""

from pathlib import Path

from hydra import compose, initialize_config_dir

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def experiments(prefix: str) -> list[str]:
    """The experiment configs whose names start with ``prefix``."""
    return sorted(p.stem for p in Path(CONF, "experiment").glob(f"{prefix}*.yaml"))


def config(overrides):
    with initialize_config_dir(config_dir=CONF, version_base=None):
        return compose("train", overrides=overrides)
