"""The library's front door: a photo and :class:`RenderOptions` in, a prepared scene out,
frames for any camera path from it.

    import cinemagraph
    from cinemagraph.motion import parse_hint_arg

    scene = cinemagraph.prepare("photo.jpg", cinemagraph.RenderOptions(max_size=960))
    scene = scene.with_motion(parse_hint_arg("600,400,640,470", scene.original_size))
    for frame in scene.render("zoom-in", frames=60):   # (1, 3, H, W) in [0, 1]
        ...

:func:`prepare` loads the photo, estimates its depth and picks every component as the
options and the weights found ask (each choice and its reason logged), and returns a
:class:`PreparedScene`. Its :meth:`~PreparedScene.render` builds what a camera path needs:
the layered depth image (with the border the path looks past the photo), its features and
the animated point cloud, each kept for the next call that needs the same. A new motion
(:meth:`~PreparedScene.with_motion`) keeps the depth, the components, the layers with their
inpainting and their features (none of them depends on the motion): only the flow the layers
carry and the point cloud are made again (:func:`~cinemagraph.pipeline.animate_scene`). A
new camera path of the same reach past the photo reuses everything but the frames.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from .errors import UserError
from .motion.field import MotionField
from .motion.hints import MotionHints
from .pipeline import Components, Scene, animate_scene, build_scene
from .render.camera import CameraPath

log = logging.getLogger("cinemagraph")

INPAINTING = ("auto", "learned", "builtin")
DECODERS = ("auto", "learned", "builtin")
DEPTH_KINDS = ("auto", "depth", "disparity")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class RenderOptions:
    """Every choice of a render (the command line's options, :mod:`cinemagraph.cli.render`).

    Photo: ``max_size`` (downscale so the long side is at most this; 0: never). Depth:
    ``depth`` (a depth or disparity map file; None: estimated), ``depth_kind``,
    ``depth_precision`` (DPT's arithmetic), ``weights_dir`` (where official checkpoints are
    looked for first). Motion: ``hints`` (in the photo file's own pixels), ``motion_auto``
    (the motion network predicts the motion from the photo alone), ``flow_scale``. Layers:
    ``max_layers``, ``inpainting`` (auto, learned, builtin). Decoding: ``decoder`` (auto,
    learned, builtin), ``decoder_weights`` (a file instead of the one found),
    ``decoder_size`` (the working size of our learned networks; 0: the frame's own).
    Rendering: ``point_radius``, ``points_per_pixel``, ``symmetric``, ``renderer`` (torch
    or pytorch3d), ``reframe`` (crop the camera path's views so that they show nothing past
    the photo's edges, :func:`~cinemagraph.render.camera.framed`; False renders the path as
    given). ``device`` (auto: CUDA when present) and ``seed``."""

    max_size: int = 1920
    depth: Path | None = None
    depth_kind: str = "auto"
    depth_precision: str = "fp32"
    weights_dir: Path | None = None
    hints: MotionHints = field(default_factory=MotionHints)
    motion_auto: bool = False
    flow_scale: float = 1.0
    max_layers: int = 4
    inpainting: str = "auto"
    decoder: str = "auto"
    decoder_weights: Path | None = None
    decoder_size: int = 448
    point_radius: float = 1.0
    points_per_pixel: int = 8
    symmetric: bool = True
    renderer: str = "torch"
    reframe: bool = True
    device: str = "auto"
    seed: int = 0

    def check(self) -> None:
        """A one-line :class:`UserError` naming the first option that cannot work."""
        if self.max_size < 0 or 0 < self.max_size < 8:
            raise UserError(f"--max-size {self.max_size}: give 0 (no limit) or at least 8")
        if not self.point_radius > 0 or self.points_per_pixel < 1 or self.max_layers < 1:
            raise UserError("--point-radius must be > 0, --points-per-pixel and --max-layers >= 1")
        for name, value, allowed in (("depth kind", self.depth_kind, DEPTH_KINDS),
                                     ("depth precision", self.depth_precision, PRECISIONS),
                                     ("inpainting", self.inpainting, INPAINTING),
                                     ("decoder", self.decoder, DECODERS),
                                     ("renderer", self.renderer, ("torch", "pytorch3d"))):
            if value not in allowed:
                raise UserError(f"{name} '{value}': one of {', '.join(allowed)}")
        if self.decoder_size != 0 and self.decoder_size < 32:
            raise UserError(f"--decoder-size {self.decoder_size}: give 32 pixels or more, or 0 "
                            "for the frame's own size")
        if self.decoder == "builtin" and self.decoder_weights is not None:
            raise UserError("--decoder builtin uses no weights: drop --decoder-weights, or "
                            "--decoder builtin")
        if self.decoder_weights is not None and not Path(self.decoder_weights).is_file():
            raise UserError(f"--decoder-weights '{self.decoder_weights}' does not exist: give a "
                            "weight file (*.safetensors or model_STEP.pth)")
        if self.renderer == "pytorch3d":
            try:
                import pytorch3d  # noqa: F401
            except ImportError:
                raise UserError("--renderer pytorch3d needs pytorch3d: install it (conda "
                                "install pytorch3d -c pytorch3d) or use --renderer torch") from None


def prepare(photo: str | Path | Tensor, options: RenderOptions | None = None) -> "PreparedScene":
    """Return the :class:`PreparedScene` of ``photo`` (an image file, or ``(1, 3, H, W)`` RGB
    in ``[0, 1]``, taken as it is) with ``options`` (default :class:`RenderOptions`):
    the photo loaded, its depth estimated, every component chosen (and logged)."""
    from .device import select_device
    from .media import load_image

    options = options or RenderOptions()
    options.check()
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    np.random.seed(options.seed)
    device = select_device(options.device)
    if isinstance(photo, Tensor):
        if photo.dim() != 4 or photo.shape[:2] != (1, 3):
            raise UserError(f"photo of shape {tuple(photo.shape)}: give (1, 3, H, W) RGB")
        image, scale, original_size = photo.float(), 1.0, tuple(photo.shape[-2:])
    else:
        image, scale, original_size = load_image(Path(photo), options.max_size or None)
    from .depth.base import normalize_depth

    depth = normalize_depth(estimate_depth(image, options, device).to(device))
    components = choose_components(options, device)
    return PreparedScene(image.to(device), depth, options, components, original_size, scale)


def estimate_depth(image: Tensor, options: RenderOptions, device) -> Tensor:
    """The depth ``(1, 1, H, W)`` of ``image``: from ``options.depth``, else DPT-Hybrid, else
    DPT-Large where their weights are found, else the built-in prior (logged)."""
    from .depth import GroundPlanePrior, load_depth_file
    from .models.zoo import find_weights

    if options.depth is not None:
        depth = load_depth_file(Path(options.depth), tuple(image.shape[-2:]), options.depth_kind)
        log.info("depth: from file '%s'", options.depth)
        return depth
    found = [(name, find_weights(name, options.weights_dir)) for name in ("dpt_hybrid", "dpt_large")]
    found = [(name, path) for name, path in found if path is not None]
    if found:
        from .depth.dpt import MODELS, DPTDepth

        name, weights = found[0]
        estimator = DPTDepth(weights, device, PRECISIONS[options.depth_precision], model=name)
        depth = estimator(image)
        log.info("depth: %s ('%s', %s)", MODELS[name], weights, options.depth_precision)
        return depth
    estimator = GroundPlanePrior()
    log.info("depth: %s (no DPT weights: dpt_hybrid-midas-501f0c75.pt is not in "
             "--weights-dir, $CINEMAGRAPH_WEIGHTS or pretrained/; cinemagraph download "
             "dpt_hybrid fetches it; or pass --depth FILE)", estimator.description)
    return estimator(image)


def choose_components(options: RenderOptions, device) -> Components:
    """The inpainter, feature extractor and decoder that ``options`` and the weights found
    ask for (each choice logged with its reason)."""
    from .ldi.learned import PhotoInpainter, find_inpainting_weights
    from .models.zoo import REGISTRY

    components = Components()
    found = find_inpainting_weights(options.weights_dir)
    missing = [REGISTRY[name].official_file for name, path in found.items() if path is None]
    if options.inpainting == "learned" and missing:
        raise UserError(f"--inpainting learned needs {' and '.join(missing)}: put them in "
                        "pretrained/ (cinemagraph download inpaint_depth_net inpaint_color_net) "
                        "or pass --weights-dir")
    if options.inpainting == "learned" or (options.inpainting == "auto" and not missing):
        components.inpainter = PhotoInpainter(found["inpaint_depth_net"],
                                              found["inpaint_color_net"], device)
    elif options.inpainting == "auto":
        log.info("inpainting: built-in push-pull (no 3D Photo weights: %s not in "
                 "--weights-dir, $CINEMAGRAPH_WEIGHTS or pretrained/; cinemagraph download "
                 "inpaint_depth_net inpaint_color_net fetches them)", " and ".join(missing))
    if options.decoder != "builtin":
        from .spacetime import find_spacetime, learned_components

        path = options.decoder_weights or find_spacetime(options.weights_dir)
        if path is None and options.decoder == "learned":
            raise UserError("--decoder learned needs the feature network and decoder: the "
                            "official model_STEP.pth (cinemagraph download cinemagraphy) or "
                            "our cinemagraph_spacetime.safetensors in pretrained/")
        if path is None:
            log.info("features and decoder: built-in (no model_STEP.pth or "
                     "cinemagraph_spacetime.safetensors in --weights-dir, $CINEMAGRAPH_WEIGHTS "
                     "or pretrained/)")
        else:
            components.features, components.decoder = learned_components(
                path, device, work_size=options.decoder_size or None)
            log.info("features and decoder: %s", components.decoder.description)
    return components


def motion_field(image: Tensor, hints: MotionHints, options: RenderOptions) -> MotionField:
    """The motion field of ``image`` from ``hints`` (in ``image``'s pixels): the motion
    network where its weights are found and there is something to animate (hints, a mask, or
    ``options.motion_auto``), else hint interpolation (logged with the reason)."""
    from .models.zoo import find_weights
    from .motion import HintInterpolator

    device, size = image.device, tuple(image.shape[-2:])
    weights = find_weights("motion_net", options.weights_dir)
    if options.motion_auto and weights is None:
        raise UserError("--motion auto needs the motion network: put sceneflow_model.pth in "
                        "pretrained/ (cinemagraph download cinemagraphy) or pass --weights-dir; "
                        "or give the motion with --hint X0,Y0,X1,Y1, --hints FILE or --motion "
                        "labelme.json")
    if weights is not None and (options.motion_auto or len(hints) > 0 or hints.mask is not None):
        from .motion.network import NetworkMotion

        estimator = NetworkMotion(weights, device, flow_scale=options.flow_scale)
        region = "the mask" if hints.mask is not None else "the whole photo"
        log.info("motion: %s over %s, %s", estimator.description, region,
                 f"from {len(hints)} hint(s)" if len(hints) else "without hints")
        return estimator(image, hints)
    interpolator = HintInterpolator(flow_scale=options.flow_scale)
    if len(hints) == 0:
        if hints.mask is not None:
            log.info("motion: a mask but no hints, so the scene is static; add --hint "
                     "X0,Y0,X1,Y1 to say which way it flows (or get sceneflow_model.pth, with "
                     "which the motion network animates the mask)")
        else:
            log.info("motion: none given, so the scene is static; animate it with --motion "
                     "labelme.json, --hints FILE or --mask FILE --hint X0,Y0,X1,Y1 (or "
                     "--motion auto, with the motion network's weights)")
    else:
        if hints.mask is None:
            log.info("motion: hints without a mask, so the whole picture moves; add --mask")
        log.info("motion: %s from %d hint(s) (no motion-network weights: sceneflow_model.pth "
                 "is not in --weights-dir, $CINEMAGRAPH_WEIGHTS or pretrained/)",
                 interpolator.description, len(hints))
    return interpolator(hints, size, device=device)


@dataclass
class PreparedScene:
    """A photo ready to render (:func:`prepare`): ``image (1, 3, H, W)``, its normalised
    ``depth (1, 1, H, W)`` (near depth 1), the ``options``, the chosen ``components``, the
    photo file's ``original_size`` ``(H, W)`` and the ``scale`` it was loaded at. The
    motion comes from ``options.hints`` (:meth:`with_motion` gives another)."""

    image: Tensor
    depth: Tensor
    options: RenderOptions
    components: Components
    original_size: tuple[int, int]
    scale: float = 1.0
    #: The layering procedure's settings (None: as the options and the inpainter say) and
    #: the border past the photo (None: as each camera path needs); the comparison's
    #: ablations set them.
    ldi_settings: object = None
    border: float | None = None
    _motion: MotionField | None = None
    _scenes: dict = field(default_factory=dict)

    @classmethod
    def of(cls, image: Tensor, depth: Tensor, motion: MotionField | None = None,
           options: RenderOptions | None = None, components: Components | None = None,
           **kw) -> "PreparedScene":
        """A scene of a given ``image (1, 3, H, W)`` and ``depth (1, 1, H, W)`` (and
        ``motion``, else from ``options.hints``), with ``components`` (default: the built-in
        ones): nothing is estimated or looked up."""
        from .depth.base import normalize_depth

        components = components or Components()
        return cls(image, normalize_depth(depth), options or RenderOptions(), components,
                   tuple(image.shape[-2:]), _motion=motion, **kw)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])

    @property
    def motion(self) -> MotionField:
        """The motion field of the hints (made once)."""
        if self._motion is None:
            hints = self.options.hints
            if self.scale != 1.0 or hints.mask is not None:
                hints = hints.scaled(self.scale, self.size)
            self._motion = motion_field(self.image, hints, self.options)
        return self._motion

    def with_motion(self, hints: MotionHints | None = None, *, motion_auto: bool | None = None,
                    flow_scale: float | None = None) -> "PreparedScene":
        """This scene with other hints (in the photo file's pixels), motion network use or
        speed: the depth, the components and the inpainting are kept."""
        changes = {k: v for k, v in (("hints", hints), ("motion_auto", motion_auto),
                                     ("flow_scale", flow_scale)) if v is not None}
        return replace(self, options=replace(self.options, **changes), _motion=None,
                       _scenes=dict(self._scenes))

    def camera_path(self, camera: str | Path, frames: int) -> CameraPath:
        """The camera path ``camera`` (a name or a path JSON file) of ``frames`` frames,
        scaled to the scene's depth; with ``options.reframe``, its views cropped so that they
        show nothing past the photo's edges (the zoom logged)."""
        from .conventions import default_intrinsics
        from .depth.base import median_depth
        from .render.camera import build_camera_path, framed

        K = default_intrinsics(*self.size)[0]
        path = build_camera_path(str(camera), frames, K, 1.0, median_depth(self.depth))
        if not self.options.reframe:
            return path
        path, framing = framed(path, self.depth, K)
        if framing.zoom > 1.0:
            h, w = self.size
            dx, dy = framing.centre[0] - (w - 1) / 2, framing.centre[1] - (h - 1) / 2
            shows = ("nothing past the photo's edges" if framing.uncovered <= 0.5 else
                     f"at most {framing.uncovered:.0f} px past the photo's edges, filled "
                     f"smoothly (the zoom stops at {framing.zoom:.2f}x)")
            log.info("camera: the '%s' path zoomed %.2fx (crop centre moved %d, %d px) so that "
                     "it shows %s; --no-reframe renders it as given", path.name, framing.zoom,
                     round(dx), round(dy), shows)
        return path

    def scene(self, path: CameraPath) -> Scene:
        """The layered image and animated cloud that ``path`` needs (kept for the next path
        of the same reach past the photo and no more frames)."""
        from .depth.base import median_depth
        from .ldi import LDISettings, SequentialSettings
        from .ldi.learned import PhotoInpainter
        from .render.camera import border_needed

        from .conventions import default_intrinsics

        K = default_intrinsics(*self.size)[0]
        border = self.border
        if border is None:
            border = border_needed(path, K, self.size, 1.0, median_depth(self.depth))
        frames = len(path)
        kept = self._scenes.get(border)
        if kept is not None:
            if kept.motion is not self.motion or kept.cloud.steps < frames:
                # Another motion or more frames: the layers and features stay.
                kept = animate_scene(kept, self.motion, max(frames, kept.cloud.steps),
                                     self.options.point_radius)
                self._scenes[border] = kept
            return kept
        settings = self.ldi_settings
        if settings is None:
            original = isinstance(self.components.inpainter, PhotoInpainter)
            settings = (SequentialSettings if original else LDISettings)(
                max_layers=self.options.max_layers)
        scene = build_scene(self.image, self.depth, self.motion, frames, self.components,
                            settings, self.options.point_radius, border)
        if border > 0:
            log.info("layers extended by %.0f%% of the long side past the photo's edges "
                     "(a smooth fill of the edge colours), where the camera path could look",
                     100 * border)
        self._scenes[border] = scene
        return scene

    def render(self, camera: str | Path | CameraPath = "zoom-in", frames: int = 60,
               progress: bool = False) -> Iterator[Tensor]:
        """Yield the ``frames`` frames ``(1, 3, H, W)`` in ``[0, 1]`` along ``camera`` (a
        named path, a path JSON file, or a :class:`CameraPath`, whose length then counts)."""
        from .render.pipeline import RenderSettings, render_frames

        if frames < 1:
            raise UserError(f"--frames {frames}: give at least 1 frame")
        path = camera if isinstance(camera, CameraPath) else self.camera_path(camera, frames)
        scene = self.scene(path)
        o = self.options
        settings = RenderSettings(o.point_radius, o.points_per_pixel, o.symmetric, o.renderer)
        return render_frames(scene.cloud, path, self.size, self.components.decoder, settings,
                             progress=progress)
