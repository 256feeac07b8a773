"""``python -m cinemagraph.train experiment=NAME [overrides]``.

Hydra composes ``conf/train.yaml`` (:func:`cinemagraph.resources.conf_dir`) with the experiment and the overrides (typos fail at
composition: the schemas are in :mod:`.config`); outputs go to Hydra's run directory
(``outputs/DATE/TIME`` unless ``hydra.run.dir=...``). Running again with the same
``hydra.run.dir`` resumes from its newest checkpoint. Sweeps: ``-m`` with comma-separated
values runs every combination with Hydra's basic launcher, one run directory each under
``multirun/``; a cluster launcher (e.g. ``hydra/launcher=submitit_slurm`` from
hydra-submitit-launcher) plugs in with ``hydra/launcher=...`` and runs the same jobs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from ..errors import UserError
from ..resources import conf_dir
from .config import register_train_configs

CONF = str(conf_dir())
log = logging.getLogger("cinemagraph.train")

#: Settings that no longer exist, and what to use instead (``benchmarks/RESULTS.md``,
#: "Tried and retired", says what each did).
RETIRED = {
    "spacetime.model.correction": "the correction applies near holes and moving points "
                                  "only: set spacetime.model.band_px, crack_px and fluid_px",
    "spacetime.model.gate_lr": "the gate is retired with correction=gate: drop it",
    "spacetime.model.moved_detail": "retired: drop it",
    "spacetime.model.clamp_px": "retired: drop it",
    "spacetime.model.refiner": "retired: drop it",
    "spacetime.model.freeze_base": "retired with the refiner: drop it",
    "spacetime.data.thin_lines": "retired: drop it",
    "spacetime.loss.psnr": "retired: use spacetime.loss.l2",
    "trainer.replay": "retired (every step takes a new batch): drop it",
    "trainer.replay_buffer": "retired with trainer.replay: drop it",
}


def retired_setting(argv: list[str]) -> str | None:
    """A one-line message for the first override in ``argv`` that sets a retired setting."""
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key in RETIRED:
            return f"{key} no longer exists: {RETIRED[key]}"
    return None


def train(cfg) -> None:
    """Run the training ``cfg`` describes in the current Hydra run directory."""
    from .loop import init_distributed

    out = Path(HydraConfig.get().runtime.output_dir)
    device = init_distributed(cfg.trainer.device)
    if cfg.task == "motion":
        from .motion import MotionTrainer as task
    elif cfg.task == "spacetime":
        from .spacetime import SpaceTimeTrainer as task
    else:
        raise UserError(f"task='{cfg.task}': use motion or spacetime")
    try:
        task(cfg, out, device).run()
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@hydra.main(config_path=CONF, config_name="train", version_base=None)
def main(cfg) -> None:
    try:
        train(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    message = retired_setting(sys.argv[1:])
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    register_train_configs()
    main()
