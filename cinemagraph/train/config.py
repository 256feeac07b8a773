"""Structured-config schemas of training (``python -m cinemagraph.train``), registered in
Hydra's ConfigStore, so a typo in a yaml or an override fails when the config is composed.

``conf/train.yaml`` is the primary config; ``conf/experiment/*.yaml`` are complete
experiments (``experiment=NAME``). Groups: ``conf/motion/training`` (the motion network's
data), and for the feature network and decoder ``conf/dataset``, ``conf/model`` (presets:
``model=small``), ``conf/loss``; ``conf/optim`` (packaged at ``train``: ``train.lr=...``)
and ``conf/trainer`` for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from ..spacetime.rules import DecodeRules


@dataclass
class MotionDataConfig:
    """``source``: "synthetic" (the synthetic scenes) or "eulerian" (the original training
    set's layout under ``root``, see :mod:`cinemagraph.train.motion_data`); ``size``: the
    square training grid (a multiple of 256; the original trains at 768); ``scenes``: how
    many synthetic scenes make an epoch; ``scene_size``: their ``[H, W]``."""

    source: str = "synthetic"
    root: Optional[str] = None
    split: str = "train"
    size: int = 256
    max_hints: int = 5
    hint_dropout: float = 0.1
    scenes: int = 10000
    scene_size: list[int] = field(default_factory=lambda: [256, 320])
    seed: int = 0


@dataclass
class MotionModelConfig:
    """``init``: a checkpoint to start the generator from (official ``sceneflow_model.pth`` or
    ours); the discriminator: ``num_d`` scales of ``n_layers`` with ``ndf`` first channels."""

    init: Optional[str] = None
    ndf: int = 64
    n_layers_d: int = 4
    num_d: int = 2


@dataclass
class MotionLossConfig:
    """Weights: end-point error (the original's 10), hinge GAN, feature matching (10)."""

    epe: float = 10.0
    gan: float = 1.0
    feature_matching: float = 10.0


@dataclass
class MotionTrainConfig:
    data: MotionDataConfig = field(default_factory=MotionDataConfig)
    model: MotionModelConfig = field(default_factory=MotionModelConfig)
    loss: MotionLossConfig = field(default_factory=MotionLossConfig)


@dataclass
class SpaceTimeDataConfig:
    """Samples for the feature network and decoder: ``source`` "synthetic" (``scenes``
    synthetic scenes of ``split``) or "videos" (real videos under ``root``, layout in
    :mod:`cinemagraph.train.spacetime_data`; ``anim`` samples only), at ``size`` ``[H, W]``,
    ``frames`` frames per animation, novel views along ``paths``; ``kinds``: some of
    ``anim``, ``nvs``, ``both``; ``per_scene`` samples per scene (one item; the batch is
    ``trainer.batch_size`` samples); ``two_frame``: the backward cloud of ``anim`` samples
    from the end photo, as the original (see :mod:`cinemagraph.train.spacetime_samples`);
    ``color_augment``: the share of items whose colours (photo, end photo and targets alike)
    go through a random hue rotation, saturation and gain (0: none); ``depth_blur``: the share
    of items whose depth is softened as a monocular estimate's would be, by a Gaussian blur
    of its disparity of ``depth_blur_sigma`` ``[low, high]`` pixels (0: none; the targets
    stay exact); ``floaters``: the share of synthetic scenes given 2-4 small hovering boxes
    just behind a box's silhouette (see :func:`cinemagraph.data.scene.sample_scene`);
    ``relight``: the share of synthetic scenes whose sky and fluids are darkened and boxes
    darkened or brightened (:func:`cinemagraph.data.scene.relight`); ``photos``: a folder of image files
    drawn as textures alongside the train split's own photographs, each as often as one of
    them (null: none; :func:`cinemagraph.data.textures.photo_files`; synthetic train split
    only)."""

    source: str = "synthetic"
    root: Optional[str] = None
    split: str = "train"
    scenes: int = 2000
    size: list[int] = field(default_factory=lambda: [192, 256])
    frames: int = 30
    paths: list[str] = field(default_factory=lambda: ["circle", "zoom-in", "side"])
    kinds: list[str] = field(default_factory=lambda: ["anim", "nvs"])
    max_layers: int = 4
    supersample: int = 1
    seed: int = 0
    per_scene: int = 2
    two_frame: bool = True
    color_augment: float = 0.0
    depth_blur: float = 0.0
    depth_blur_sigma: list[float] = field(default_factory=lambda: [1.0, 4.0])
    floaters: float = 0.0
    relight: float = 0.0
    photos: Optional[str] = None


#: The decoder's rules that the spacetime model's settings default to: the shipped ones.
SHIPPED_RULES = DecodeRules()


@dataclass
class SpaceTimeModelConfig:
    """``preset``: official, base or small (:mod:`cinemagraph.spacetime.network`); ``init``:
    weights to start from; for the residual presets, where their correction applies
    (:class:`cinemagraph.spacetime.rules.DecodeRules`, whose defaults these are: the shipped
    rules): ``band_px`` the hole band's width and ``crack_px`` its width around cracks,
    ``fluid_px`` the band around moving points (0: none), ``fluid_rule`` (``free`` or
    ``smooth``) and ``fluid_border``; weights from ``init`` take these rules (logged where
    they change). ``ema``: the decay of an exponential moving average of the weights, updated
    after every step (0: none; 0.999 averages over about the last 1,000 steps), which the
    ``step_N.safetensors`` checkpoints then hold (the ``.pt`` files hold both); ``save_fp16``:
    write those ``step_N.safetensors`` files in fp16, as the shipped weights are (the ``.pt``
    files keep fp32 for resuming); the discriminator as for the motion network."""

    preset: str = "small"
    init: Optional[str] = None
    band_px: int = SHIPPED_RULES.band_px
    crack_px: int = SHIPPED_RULES.crack_px
    fluid_px: int = SHIPPED_RULES.fluid_px
    fluid_rule: str = SHIPPED_RULES.fluid_rule
    fluid_border: bool = SHIPPED_RULES.fluid_border
    ema: float = 0.0
    save_fp16: bool = False
    ndf: int = 64
    n_layers_d: int = 3
    num_d: int = 2


@dataclass
class SpaceTimeLossConfig:
    """Weights: L1 and squared error (L2) on defined pixels, perceptual (LPIPS-VGG, only where its weights are present), hinge GAN, discriminator
    feature matching."""

    l1: float = 1.0
    l2: float = 0.0
    perceptual: float = 1.0
    gan: float = 0.05
    feature_matching: float = 0.5


@dataclass
class SpaceTimeTrainConfig:
    data: SpaceTimeDataConfig = field(default_factory=SpaceTimeDataConfig)
    model: SpaceTimeModelConfig = field(default_factory=SpaceTimeModelConfig)
    loss: SpaceTimeLossConfig = field(default_factory=SpaceTimeLossConfig)


@dataclass
class OptimConfig:
    """Adam for both networks (the original: lr 1e-4, lr_d 1e-3, betas (0, 0.9)); both rates
    are multiplied by ``decay`` every ``decay_steps``."""

    lr: float = 1e-4
    lr_d: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.9
    decay_steps: int = 50000
    decay: float = 0.5


@dataclass
class TrainerConfig:
    """``steps``: where training stops (a resumed run continues to it); checkpoints and
    sample pictures every so many steps, the last ``keep_last`` checkpoints kept;
    ``resume``: continue from the newest checkpoint in the run directory, if any;
    ``num_workers``: the loader's worker processes (-1, the
    default: on a GPU each process's share of the CPUs less one, on the CPU none;
    :func:`~cinemagraph.train.loop.loader_workers`); ``pin_memory``: the loader copies each
    batch into page-locked memory before the step moves it to a GPU; ``time_limit``: seconds
    of training after which the run stops with a checkpoint, as it does at ``steps`` (0: no
    limit), for a job that must end within a machine's or a scheduler's time; running again
    resumes there."""

    steps: int = 1000
    batch_size: int = 1
    num_workers: int = -1
    log_every: int = 10
    checkpoint_every: int = 500
    sample_every: int = 500
    keep_last: int = 3
    device: str = "auto"
    seed: int = 0
    resume: bool = True
    pin_memory: bool = True
    time_limit: float = 0.0


@dataclass
class TrainConfig:
    """``task``: "motion" (the motion network) or "spacetime" (the feature network and
    image decoder)."""

    task: str = "motion"
    motion: MotionTrainConfig = field(default_factory=MotionTrainConfig)
    spacetime: SpaceTimeTrainConfig = field(default_factory=SpaceTimeTrainConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def register_train_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
