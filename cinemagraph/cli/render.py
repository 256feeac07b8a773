"""``python -m cinemagraph.render IMAGE --camera zoom-in``: a photo in, a 3D cinemagraph out.

Every user error ends with one line on stderr naming the problem and the fix, exit code 2,
and no partial output. See ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..errors import UserError

log = logging.getLogger("cinemagraph")


def build_parser() -> argparse.ArgumentParser:
    from ..spacetime import WORK_SIZE
    from ..render.camera import NAMED_PATHS

    p = argparse.ArgumentParser(
        prog="cinemagraph render",
        description="Turn one photo into a 3D cinemagraph video: fluid regions flow while "
                    "the camera moves through the scene.")
    p.add_argument("image", nargs="?", help="the photo (JPEG or PNG)")
    p.add_argument("--example", choices=["rocket"], help="use a photo shipped with the project")
    p.add_argument("--camera", default="zoom-in",
                   help=f"camera path: {', '.join(NAMED_PATHS)}, or a path JSON file "
                        "(format: cinemagraph.render.camera)")
    p.add_argument("-o", "--output", type=Path,
                   help="output file (.mp4 or .gif); default IMAGE_STEM_CAMERA.mp4 beside the image")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--frames", type=int, default=60, help="number of frames (default 60)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--gif", action="store_true", help="write a GIF instead of an MP4")
    p.add_argument("--save-frames", type=Path, metavar="DIR", help="also write every frame as PNG")
    p.add_argument("--save-debug", type=Path, metavar="DIR",
                   help="write pictures of the depth, motion field and layers")
    p.add_argument("--max-size", type=int, default=1920,
                   help="downscale so the long side is at most this (0: never; default 1920)")
    g = p.add_argument_group("depth")
    g.add_argument("--depth", type=Path, help="depth or disparity map (8/16-bit PNG or .npy)")
    g.add_argument("--depth-kind", choices=["auto", "depth", "disparity"], default="auto",
                   help="what --depth holds (default: guessed, and logged)")
    g.add_argument("--depth-is-disparity", action="store_true",
                   help="same as --depth-kind disparity")
    g.add_argument("--weights-dir", type=Path, help="folder of official checkpoints (default: "
                   "$CINEMAGRAPH_WEIGHTS, then pretrained/)")
    g.add_argument("--depth-precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="DPT's arithmetic (bf16/fp16 for GPUs; fp32 reproduces the original)")
    g = p.add_argument_group("motion")
    g.add_argument("--motion", metavar="FILE|auto",
                   help="labelme JSON with the moving region and hints; or 'auto': the motion "
                        "network predicts the motion from the photo alone (needs "
                        "sceneflow_model.pth)")
    g.add_argument("--hints", type=Path, help="hints JSON (format: cinemagraph.motion.hints)")
    g.add_argument("--mask", type=Path, help="mask picture, non-zero where things move")
    g.add_argument("--hint", action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="a motion hint from (X0, Y0) to (X1, Y1) in pixels; repeatable")
    g.add_argument("--flow-scale", type=float, default=1.0, help="speed factor of the fluid")
    g = p.add_argument_group("layers")
    g.add_argument("--max-layers", type=int, default=4, help="cap on the number of depth layers")
    g.add_argument("--inpainting", choices=["auto", "learned", "builtin"], default="auto",
                   help="learned: the 3D Photo networks (depth-model.pth, color-model.pth) in "
                        "the original's layer-by-layer procedure; builtin: push-pull; auto "
                        "(default): learned when both files are found")
    g.add_argument("--decoder", choices=["auto", "learned", "builtin"], default="auto",
                   help="learned: the feature network and image decoder (the official "
                        "model_STEP.pth, else our weights in pretrained/); builtin: "
                        "compositing; auto (default): learned when weights are found")
    g.add_argument("--decoder-weights", type=Path, metavar="FILE",
                   help="the feature network + decoder weights to use (our *.safetensors or an "
                        "official model_STEP.pth) instead of those found in --weights-dir, "
                        "$CINEMAGRAPH_WEIGHTS or pretrained/")
    g.add_argument("--decoder-size", type=int, default=WORK_SIZE, metavar="PX",
                   help="the longer side at which our learned feature network and decoder "
                        f"run (default {WORK_SIZE}, near the scale they were trained at; larger "
                        "frames get their correction enlarged onto the built-in composite); 0: "
                        "at the frame's own size. The official networks always run at the "
                        "frame's size")
    g = p.add_argument_group("rendering")
    g.add_argument("--point-radius", type=float, default=1.0, help="point radius in pixels")
    g.add_argument("--points-per-pixel", type=int, default=8, help="K nearest points per pixel")
    g.add_argument("--no-symmetric", action="store_true",
                   help="draw only the forward cloud (no 3D symmetric animation)")
    g.add_argument("--no-reframe", action="store_true",
                   help="render the camera path as given, even where it looks past the photo's "
                   "edges (filled smoothly there); by default its views are cropped, with a "
                   "small zoom that is logged, so that they show only the photo")
    g.add_argument("--renderer", choices=["torch", "pytorch3d"], default="torch",
                   help="splatting backend (pytorch3d must be installed for it)")
    p.add_argument("--device", default="auto", help="cpu, cuda or cuda:N (default: cuda if present)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the pipeline is deterministic)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or info lines")
    return p


def _check_numbers(args) -> None:
    if args.frames < 1:
        raise UserError(f"--frames {args.frames}: give at least 1 frame")
    if not args.fps > 0:
        raise UserError(f"--fps {args.fps}: give a positive frame rate")


def _output_path(args, stem: str, folder: Path) -> Path:
    if args.output is not None:
        out = args.output
        if out.suffix.lower() not in (".mp4", ".gif"):
            raise UserError(f"output '{out}' must end in .mp4 or .gif")
        return out
    camera = Path(args.camera).stem if args.camera.lower().endswith(".json") else args.camera
    return folder / f"{stem}_{camera}{'.gif' if args.gif else '.mp4'}"


def _load_hints(args, original_size):
    """The hints the options give, in the photo file's own pixels."""
    from ..motion import MotionHints, parse_hint_arg, read_hints_json, read_labelme, read_mask

    hints = MotionHints()
    if args.motion is not None and args.motion != "auto":
        hints = hints.merged(read_labelme(Path(args.motion), original_size))
    if args.hints is not None:
        hints = hints.merged(read_hints_json(args.hints, original_size))
    for text in args.hint:
        hints = hints.merged(parse_hint_arg(text, original_size))
    if args.mask is not None:
        hints = hints.merged(MotionHints(mask=read_mask(args.mask, original_size)))
    return hints


def options_of(args):
    """The library's :class:`~cinemagraph.api.RenderOptions` of the parsed arguments (the
    hints are added once the photo's size is known)."""
    from ..api import RenderOptions

    return RenderOptions(
        max_size=args.max_size, depth=args.depth,
        depth_kind="disparity" if args.depth_is_disparity else args.depth_kind,
        depth_precision=args.depth_precision, weights_dir=args.weights_dir,
        motion_auto=args.motion == "auto", flow_scale=args.flow_scale,
        max_layers=args.max_layers, inpainting=args.inpainting, decoder=args.decoder,
        decoder_weights=args.decoder_weights, decoder_size=args.decoder_size,
        point_radius=args.point_radius, points_per_pixel=args.points_per_pixel,
        symmetric=not args.no_symmetric, reframe=not args.no_reframe, renderer=args.renderer,
        device=args.device, seed=args.seed)


def run(args) -> Path:
    """Render the cinemagraph that ``args`` describe and return the output path."""
    from ..api import prepare
    from ..media import AtomicOutput, check_output_dir, save_image
    from ..media.image import to_uint8
    from ..media.video import VideoWriter
    from ..visualize import depth_picture, flow_picture, layer_pictures

    _check_numbers(args)
    options = options_of(args)
    if args.example and args.image:
        raise UserError("give either IMAGE or --example, not both")
    if args.example:
        from ..examples import example_photo

        photo, hints_file = example_photo(args.example)
        image_path = Path(tempfile.mkdtemp()) / f"{args.example}.png"
        save_image(image_path, photo)
        stem, folder = args.example, Path.cwd()
        if not (args.motion or args.hints or args.hint or args.mask):
            args.hints = hints_file
    elif args.image:
        image_path = Path(args.image)
        stem, folder = image_path.stem, image_path.resolve().parent
    else:
        raise UserError("no photo given: pass IMAGE, or --example rocket to try the shipped one")

    output = _output_path(args, stem, folder)
    check_output_dir(output)
    if output.exists() and not args.overwrite:
        raise UserError(f"'{output}' already exists: pass --overwrite to replace it, or choose "
                        "another name with -o")
    for folder_arg in (args.save_frames, args.save_debug):
        if folder_arg is not None:
            check_output_dir(folder_arg)
            if folder_arg.exists() and not args.overwrite:
                raise UserError(f"'{folder_arg}' already exists: pass --overwrite to replace "
                                "it, or choose another directory")
    prepared = prepare(image_path, options)
    prepared = prepared.with_motion(_load_hints(args, prepared.original_size))
    path = prepared.camera_path(args.camera, args.frames)
    scene = prepared.scene(path)
    c = prepared.components
    log.info("inpainting: %s; decoder: %s; renderer: %s on %s", c.inpainter.description,
             c.decoder.description, args.renderer, prepared.image.device)
    if args.save_debug is not None:
        with AtomicOutput(args.save_debug, args.overwrite, is_dir=True) as tmp:
            save_image(tmp / "depth.png", depth_picture(scene.depth))
            save_image(tmp / "motion.png", flow_picture(scene.image, prepared.motion.flow,
                                                        prepared.motion.mask))
            for i, pic in enumerate(layer_pictures(scene.ldi)):
                save_image(tmp / f"layer_{i}.png", pic)
        log.info("debug pictures written to '%s'", args.save_debug)

    frames = prepared.render(path, progress=not args.quiet)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(VideoWriter(
            stack.enter_context(AtomicOutput(output, args.overwrite)), args.fps))]
        if args.save_frames is not None:
            folder = stack.enter_context(AtomicOutput(args.save_frames, args.overwrite, is_dir=True))
            writers.append(stack.enter_context(VideoWriter(folder, args.fps, is_dir=True)))
        for frame in frames:
            array = to_uint8(frame)
            for writer in writers:
                writer.append(array)
    elapsed = time.perf_counter() - start
    log.info("wrote %d frames to '%s' (%.1f frames/s)", args.frames, output,
             args.frames / max(elapsed, 1e-9))
    return output


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    try:
        run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output was written", file=sys.stderr)
        return 130
    except torch.OutOfMemoryError:
        print("error: out of GPU memory: use a smaller --max-size, or --device cpu",
              file=sys.stderr)
        return 2
    return 0
