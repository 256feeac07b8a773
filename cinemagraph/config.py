"""Structured-config schemas of every stage, registered in Hydra's ConfigStore.

``conf/`` mirrors the package: one group per stage, each yaml named after what it builds.
The schemas are the stages' own settings dataclasses, so a typo in a yaml or an override
fails when the config is composed. :func:`build_components` turns a composed config into
the objects the pipeline takes; no stage reads the config itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from .depth.prior import PriorSettings
from .ldi.builder import LDISettings
from .ldi.sequential import SequentialSettings
from .render.pipeline import RenderSettings


@dataclass
class DepthConfig:
    """``name``: "prior" (built-in) or "file" (read ``path``)."""

    name: str = "prior"
    prior: PriorSettings = field(default_factory=PriorSettings)
    path: str | None = None
    kind: str = "auto"


@dataclass
class MotionConfig:
    """``name``: "hints" (Gaussian RBF interpolation of hints)."""

    name: str = "hints"
    sigma: float = 0.15
    blur: int = 5
    flow_scale: float = 1.0


@dataclass
class LDIConfig:
    """``name``: "builtin" (our procedure, ``settings``) or "original" (the original's
    layer-by-layer procedure, ``sequential``). The inpainter is a pipeline component: the
    built-in push-pull unless one is passed (the render command passes the 3D Photo networks
    when their weights are found)."""

    name: str = "builtin"
    settings: LDISettings = field(default_factory=LDISettings)
    sequential: SequentialSettings = field(default_factory=SequentialSettings)


@dataclass
class DecoderConfig:
    """``name``: "compositing" (built-in)."""

    name: str = "compositing"
    full_coverage: float = 0.5


@dataclass
class VideoConfig:
    frames: int = 60
    fps: float = 30.0
    camera: str = "zoom-in"


@dataclass
class RenderJobConfig:
    defaults: list[Any] = field(default_factory=lambda: [
        "_self_", {"depth": "prior"}, {"motion": "hints"}, {"ldi": "builtin"},
        {"renderer": "torch"}, {"decoder": "compositing"}])
    depth: DepthConfig = field(default_factory=DepthConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    ldi: LDIConfig = field(default_factory=LDIConfig)
    renderer: RenderSettings = field(default_factory=RenderSettings)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    device: str = "auto"
    seed: int = 0


@dataclass
class EvalConfig:
    """The baseline comparison (:mod:`cinemagraph.eval.compare`).

    ``data``: dataset folder; ``split``; ``methods``: names (empty: all); ``cameras``: paths
    (empty: every path the scenes have); ``depth_from``: "gt" or "estimated" (the built-in
    prior; the command's ``--depth``);
    ``scenes``: at most this many (0: all); ``out``: results folder; ``contact_scenes``: rows
    of the contact sheet; ``device``: "auto", "cpu" or "cuda".
    """

    data: str = "???"
    split: str = "test"
    methods: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    depth_from: str = "gt"
    scenes: int = 0
    out: str = "results"
    contact_scenes: int = 3
    device: str = "auto"
    overwrite: bool = False


def register_configs() -> None:
    """Register the schemas: ``render_schema`` and one ``*_schema`` per group."""
    cs = ConfigStore.instance()
    cs.store(name="render_schema", node=RenderJobConfig)
    cs.store(group="depth", name="depth_schema", node=DepthConfig)
    cs.store(group="motion", name="motion_schema", node=MotionConfig)
    cs.store(group="ldi", name="ldi_schema", node=LDIConfig)
    cs.store(group="renderer", name="renderer_schema", node=RenderSettings)
    cs.store(group="decoder", name="decoder_schema", node=DecoderConfig)
    cs.store(group="eval", name="eval_schema", node=EvalConfig)


def build_components(cfg) -> dict:
    """Return the stage objects a composed config describes (depth estimator, motion
    interpolator, LDI settings, render settings, pipeline components)."""
    from omegaconf import OmegaConf

    from .depth import GroundPlanePrior
    from .render.decode import CompositingDecoder
    from .motion import HintInterpolator
    from .pipeline import Components

    if cfg.depth.name != "prior" and cfg.depth.name != "file":
        raise ValueError(f"unknown depth '{cfg.depth.name}'")
    if cfg.ldi.name not in ("builtin", "original"):
        raise ValueError(f"unknown ldi '{cfg.ldi.name}'")
    prior = PriorSettings(**OmegaConf.to_container(cfg.depth.prior))
    return {
        "depth": GroundPlanePrior(prior) if cfg.depth.name == "prior" else None,
        "motion": HintInterpolator(cfg.motion.sigma, cfg.motion.blur, cfg.motion.flow_scale),
        "ldi": (SequentialSettings(**OmegaConf.to_container(cfg.ldi.sequential))
                if cfg.ldi.name == "original"
                else LDISettings(**OmegaConf.to_container(cfg.ldi.settings))),
        "renderer": RenderSettings(**OmegaConf.to_container(cfg.renderer)),
        "components": Components(decoder=CompositingDecoder(cfg.decoder.full_coverage)),
    }
