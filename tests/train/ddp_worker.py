"""Run by tests/train/test_spacetime_training.py under torchrun (two gloo processes)."""

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from cinemagraph.train.config import register_train_configs
from cinemagraph.train.loop import init_distributed
from cinemagraph.train.spacetime import SpaceTimeTrainer

out = Path(sys.argv[1])
register_train_configs()
with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"),
                           version_base=None):
    cfg = compose("train", overrides=["experiment=spacetime_small", "trainer.steps=3",
                                      "trainer.batch_size=1", "trainer.device=cpu",
                                      "spacetime.data.scenes=6", "spacetime.data.size=[64,96]",
                                      "spacetime.data.frames=6", "trainer.log_every=1",
                                      # never reached: its per-step broadcast runs
                                      "trainer.time_limit=3600"])
device = init_distributed("cpu")
trainer = SpaceTimeTrainer(cfg, out, device)
trainer.run()
torch.save({k: v.cpu() for k, v in trainer.model.state_dict().items()},
           out / f"rank{trainer.rank}.pt")
torch.save(trainer._last[1].cpu(), out / f"target{trainer.rank}.pt")
