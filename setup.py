from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="cinemagraph",
    version="0.1.0",
    description="3D cinemagraphs from a single photo (a re-implementation of Li et al., CVPR 2023)",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # conf/ and the shipped weights install inside the package (cinemagraph.resources finds
    # them there, or beside the package in a source checkout).
    packages=find_packages(include=["cinemagraph", "cinemagraph.*"])
    + ["cinemagraph.conf", "cinemagraph.pretrained"],
    package_dir={"cinemagraph.conf": "conf", "cinemagraph.pretrained": "pretrained"},
    package_data={"cinemagraph.examples": ["*.json"],
                  "cinemagraph.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"],
                  "cinemagraph.pretrained": ["cinemagraph_spacetime.safetensors", "*.md"]},
    # No upper pins on torch: any recent build works, CPU or CUDA.
    install_requires=[
        "torch>=2.1",
        "numpy",
        "scipy",
        "kornia>=0.7",
        "scikit-image>=0.21",
        "imageio>=2.31",
        "imageio-ffmpeg",
        "tqdm",
        "hydra-core>=1.3",
        "safetensors",
    ],
    extras_require={
        "dev": ["pytest", "lz4", "timm", "lpips", "torchvision"],  # the tests cover the learned parts
        "train": ["lz4"],
        "learned": ["timm", "lpips", "torchvision"],
    },
    entry_points={"console_scripts": ["cinemagraph=cinemagraph.__main__:main"]},
)
