from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from cinemagraph.config import build_components, register_configs

CONF = str(Path(__file__).resolve().parents[1] / "conf")
GROUPS = {"depth": ["prior", "file"], "motion": ["hints"], "ldi": ["builtin", "original"],
          "renderer": ["torch", "pytorch3d"], "decoder": ["compositing"]}


@pytest.fixture(scope="module", autouse=True)
def _store():
    register_configs()


@pytest.mark.parametrize("group, option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_config_group_composes_and_builds(group, option):
    overrides = [f"{group}={option}"] + (["depth.path=x.png"] if option == "file" else [])
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose("render", overrides=overrides)
    built = build_components(cfg)
    assert built["renderer"].points_per_pixel == 8
    assert (built["depth"] is None) == (option == "file")
    assert type(built["ldi"]).__name__ == ("SequentialSettings" if option == "original"
                                           else "LDISettings")


def test_every_yaml_in_conf_is_covered():
    training = {"experiment", "dataset", "model", "loss", "optim", "trainer"}  # tests/train
    found = {(p.parent.name, p.stem) for p in Path(CONF).glob("*/*.yaml")
             if p.parent.name not in training}
    assert found == {(g, o) for g, opts in GROUPS.items() for o in opts} | {("eval", "compare")}


def test_the_comparison_config_composes_and_checks_its_keys():
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose("eval/compare", overrides=["data=some/dir", "depth_from=estimated"])
        assert cfg.data == "some/dir" and cfg.depth_from == "estimated" and cfg.split == "test"
        with pytest.raises(ConfigCompositionException):
            compose("eval/compare", overrides=["depth_frm=gt"])


def test_a_typo_fails_at_composition():
    with initialize_config_dir(config_dir=CONF, version_base=None):
        with pytest.raises(ConfigCompositionException):
            compose("render", overrides=["renderer.point_radus=2"])
