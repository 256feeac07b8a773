"""The package installed from a wheel, not only checked out: it finds its Hydra configs and
its shipped weights inside itself.

A wheel is built from a copy of the source tree, installed into a fresh virtual environment
(with the system's packages, so torch and the rest are not installed again), and run from a
folder that is neither the checkout nor holds a ``pretrained/``. Runs in the normal test
suite, in well under two minutes.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "cinemagraph_spacetime.safetensors"


def _copy_source(dest: Path) -> None:
    """What a wheel is built from: the package, its configs and the shipped weight file with
    its notes (not any official checkpoints a user put into pretrained/, nor build/)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "cinemagraph", dest / "cinemagraph", ignore=ignore)
    shutil.copytree(ROOT / "conf", dest / "conf", ignore=ignore)
    (dest / "pretrained").mkdir()
    for path in [ROOT / "pretrained" / SHIPPED, *(ROOT / "pretrained").glob("*.md")]:
        shutil.copy2(path, dest / "pretrained" / path.name)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "CINEMAGRAPH_WEIGHTS", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _run(cmd, cwd, timeout=120):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The python of a fresh virtual environment with the wheel installed, and a work folder."""
    if (ROOT / "pretrained" / SHIPPED).stat().st_size < 1_000_000:
        pytest.skip("the shipped weight file is a Git LFS pointer or missing")
    tmp = tmp_path_factory.mktemp("install")
    src, wheels, work = tmp / "src", tmp / "wheels", tmp / "work"
    for d in (src, wheels, work):
        d.mkdir()
    _copy_source(src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", wheels, src], cwd=tmp)
    wheel = next(wheels.glob("cinemagraph-*.whl"))
    python = _venv(tmp / "venv")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
          "-q", wheel], cwd=tmp)
    shutil.rmtree(src)  # nothing may be found in the tree the wheel came from
    return python, work


def _venv(path: Path) -> Path:
    """A fresh virtual environment seeing the system's packages. Without a pip of its own:
    its ``python -m pip`` is the system's, with the system's setuptools (the venv's bundled
    one could be too old to build an editable wheel without the ``wheel`` package)."""
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", path],
         cwd=path.parent)
    return path / "bin" / "python"


def _site_packages(python: Path) -> Path:
    return python.parents[1] / "lib"


def test_the_installed_package_is_imported_with_its_files(installed):
    python, work = installed
    out = _run([python, "-c", "import cinemagraph, cinemagraph.resources as r; "
                "print(cinemagraph.__file__); print(r.conf_dir()); "
                "print(r.shipped_weights_dir())"], cwd=work).split()
    lib = _site_packages(python).resolve()
    package, conf, weights = (Path(p).resolve() for p in out[-3:])
    assert lib in package.parents and ROOT not in package.parents, package
    assert conf == package.parent / "conf" and (conf / "train.yaml").is_file()
    assert weights == package.parent / "pretrained" and (weights / SHIPPED).is_file()
    assert (weights / "MODEL_CARD.md").is_file()
    assert not (weights / "candidates").exists()


def test_an_editable_install_finds_the_checkouts_files(tmp_path):
    src, work = tmp_path / "src", tmp_path / "work"
    src.mkdir(), work.mkdir()
    _copy_source(src)
    python = _venv(tmp_path / "venv")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
          "--ignore-installed", "-q", "-e", src], cwd=tmp_path)
    out = _run([python, "-c", "import cinemagraph, cinemagraph.resources as r; "
                "from cinemagraph.spacetime import find_spacetime; "
                "print(cinemagraph.__file__); print(r.conf_dir()); print(find_spacetime())"],
               cwd=work).split()
    package, conf, weights = (Path(p).resolve() for p in out[-3:])
    assert package == (src / "cinemagraph" / "__init__.py").resolve()
    assert conf == (src / "conf").resolve()
    assert weights == (src / "pretrained" / SHIPPED).resolve()


def test_the_installed_package_renders_the_example_with_its_weights(installed):
    python, work = installed
    log = _run([python, "-m", "cinemagraph.render", "--example", "rocket", "--max-size", "64",
                "--frames", "3", "--camera", "zoom-in"], cwd=work)
    lines = [line for line in log.splitlines() if line.startswith("features and decoder:")]
    assert len(lines) == 1, log[-3000:]
    assert "learned feature network + image decoder" in lines[0]
    weights = (_site_packages(python) / "python{}.{}".format(*sys.version_info[:2])
               / "site-packages" / "cinemagraph" / "pretrained" / SHIPPED)
    assert f"'{weights}'" in lines[0] or f"'{weights.resolve()}'" in lines[0], lines[0]
    assert (work / "rocket_zoom-in.mp4").is_file()


def test_the_installed_package_composes_its_configs(installed):
    python, work = installed
    # The training entry point composes conf/train.yaml with an experiment (and stops there).
    out = _run([python, "-m", "cinemagraph.train", "experiment=spacetime_base", "--cfg", "job"],
               cwd=work)
    assert "task: spacetime" in out and "preset: base" in out, out[-2000:]
    # The comparison's config (conf/eval/compare.yaml) and a Hydra compose of the render's.
    script = (
        "import argparse\n"
        "from hydra import compose, initialize_config_dir\n"
        "from cinemagraph.config import register_configs\n"
        "from cinemagraph.eval import compare\n"
        "from cinemagraph.resources import conf_dir\n"
        "assert compare.CONF.is_file(), compare.CONF\n"
        "args = compare.build_parser().parse_args([])\n"
        "print('split', compare.load_config(args).split)\n"
        "register_configs()\n"
        "with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):\n"
        "    cfg = compose('render', overrides=['ldi=original'])\n"
        "print('ldi', cfg.ldi.name)\n")
    out = _run([python, "-c", script], cwd=work)
    assert "split test" in out and "ldi original" in out, out[-2000:]
